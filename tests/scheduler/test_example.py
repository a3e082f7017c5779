"""Orloj's task-schedules example applies as written, and its template runs on the mock provider
under `podium dev` on a fast schedule: under `forbid`, each run starts only after the previous
one has a result."""

from __future__ import annotations

import itertools
from pathlib import Path

import asyncpg
import pytest

from manifests.apply import apply_paths
from podium.core.settings import KafkaSettings
from tests.faults.cluster import Cluster, read_topic
from tests.helpers import wait_until
from topics.codec import decode
from topics.messages import AnyResult, TaskCompleted, TaskRequested
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "manifests" / "examples" / "report-system"

FAST = """\
apiVersion: orloj.dev/v1
kind: TaskSchedule
metadata:
  name: fast-report
spec:
  task_ref: default/weekly-report-template
  schedule: "* * * * * *"
  concurrency_policy: forbid
"""


async def test_the_template_runs_on_schedule_one_run_at_a_time(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    database_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    fast = tmp_path / "fast.yaml"
    fast.write_text(FAST)
    report = await apply_paths(kafka_settings, topic_names, [REPORT, fast])
    assert report.ok, report.errors
    home = tmp_path / "cluster"
    home.mkdir()
    cluster = Cluster(kafka_settings, database_url, home, ledger_schema=pg_schema)

    async def completed() -> list[TaskCompleted]:
        results = [
            decode(r.value, AnyResult)
            for r in await read_topic(kafka_settings, topic_names.results)
        ]
        done = [r for r in results if isinstance(r, TaskCompleted)]
        return done if len(done) >= 3 else []

    async def in_ledger() -> int:
        conn = await asyncpg.connect(database_url, server_settings={"search_path": pg_schema})
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM events WHERE type = 'task.requested' "
                    "AND data->>'submitted_by' = 'schedule/fast-report'"
                )
            )
        except asyncpg.UndefinedTableError:
            return 0
        finally:
            await conn.close()

    try:
        cluster.start("dev", "dev")
        done = await wait_until(completed, timeout=150, interval=1.0, message="3 scheduled runs")
        # Who started each task is in the ledger: its task.requested says submitted_by.
        await wait_until(in_ledger, timeout=60, interval=0.5, message="the firings in the ledger")
    finally:
        cluster.close()
    assert all(r.task_id.startswith("fast-report-") for r in done), cluster.logs()
    assert all("Report:" in r.output for r in done)
    requests = {
        t.task_id: t
        for t in (
            decode(r.value, TaskRequested)
            for r in await read_topic(kafka_settings, topic_names.tasks)
        )
    }
    assert all(t.submitted_by == "schedule/fast-report" for t in requests.values())
    finished = {r.task_id: r.finished_at for r in done}
    runs = sorted(requests.values(), key=lambda t: t.task_id)
    for earlier, later in itertools.pairwise(runs):
        if earlier.task_id in finished and later.submitted_at is not None:
            assert later.submitted_at >= finished[earlier.task_id], "forbid let two runs overlap"
