"""Two `podium scheduler` replicas over a schedule firing every 2 seconds: the one that fires is
killed (SIGKILL) mid-run, the other takes over, and every slot from the first to the last is
started exactly once (by task id, on `podium.tasks`), with no gap."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from manifests.apply import apply_paths
from podium.core.settings import KafkaSettings
from scheduler.service import SCHEDULE_LABEL
from tests.faults.cluster import Cluster, read_topic
from tests.helpers import wait_until
from topics.codec import decode
from topics.messages import TaskRequested
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "manifests" / "examples" / "report-system"

SCHEDULE = """\
apiVersion: orloj.dev/v1
kind: Task
metadata:
  name: tick-template
spec:
  mode: template
  system: report-system
  input:
    topic: the tick
---
apiVersion: orloj.dev/v1
kind: TaskSchedule
metadata:
  name: tick
spec:
  task_ref: tick-template
  schedule: "*/2 * * * * *"
  starting_deadline_seconds: 60
  concurrency_policy: allow
"""


async def _requests(kafka: KafkaSettings, names: TopicNames) -> list[TaskRequested]:
    return [decode(r.value, TaskRequested) for r in await read_topic(kafka, names.tasks)]


def _slot(task: TaskRequested) -> datetime:
    return datetime.fromisoformat(task.labels["orloj.dev/task-schedule-slot"])


async def test_each_slot_fires_once_when_a_replica_dies(
    kafka_settings: KafkaSettings, topic_names: TopicNames, tmp_path: Path
) -> None:
    manifest = tmp_path / "schedule.yaml"
    manifest.write_text(SCHEDULE)
    report = await apply_paths(
        kafka_settings, topic_names, [REPORT / "system.yaml", REPORT / "endpoint.yaml", manifest]
    )
    assert report.ok, report.errors
    home = tmp_path / "cluster"
    home.mkdir()
    cluster = Cluster(
        kafka_settings,
        "",
        home,
        env_extra={"PODIUM_SCHEDULER_SESSION_TIMEOUT_MS": "6000", "PODIUM_SCHEDULER_TICK_S": "0.2"},
    )
    try:
        cluster.start("s1", "scheduler")
        cluster.start("s2", "scheduler")

        async def fired(n: int) -> list[TaskRequested]:
            found = await _requests(kafka_settings, topic_names)
            return found if len(found) >= n else []

        await wait_until(lambda: fired(4), timeout=90, interval=0.5, message="4 slots fired")
        owner = next(name for name in ("s1", "s2") if "fired as task" in cluster.logs(f"{name}."))
        cluster.kill(owner)
        at_kill = len(await _requests(kafka_settings, topic_names))
        await wait_until(
            lambda: fired(at_kill + 6), timeout=90, interval=0.5, message="the survivor fires"
        )
        survivor = "s2" if owner == "s1" else "s1"
        assert "fired as task" in cluster.logs(f"{survivor}."), cluster.logs()
        await asyncio.sleep(1.0)
    finally:
        cluster.close()

    requests = await _requests(kafka_settings, topic_names)
    ids = [r.task_id for r in requests]
    assert len(ids) == len(set(ids)), f"a slot fired twice: {sorted(ids)}"
    slots = sorted(_slot(r) for r in requests)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap == timedelta(seconds=2) for gap in gaps), f"slots missed: {slots}"
    first = requests[0]
    assert first.submitted_by == "schedule/tick"
    assert first.labels[SCHEDULE_LABEL] == "tick"
    assert first.system == "report-system"
    assert first.input == {"topic": "the tick"}
    assert first.task_id == f"tick-{_slot(first).strftime('%Y-%m-%dT%H:%M:%SZ')}"
