"""Orloj's `Task` (mode run) applied and run end to end on the mock provider, as separate
`podium` processes: applied twice (and once more with a new label), with two scheduler
replicas, and the process that submitted it killed (SIGKILL) while it runs, the Task runs to
completion exactly once. `podium get task NAME` shows Orloj's phases from the scheduler's state
and the ledger: WaitingApproval while a tool call waits for a person, then Succeeded with the
output."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from ledger.auth import Scope, create_token
from manifests.apply import apply_paths
from podium.cli import app
from podium.core.settings import KafkaSettings
from policy_service.approvals import decide_approval, list_approvals
from scheduler.status import read_runs
from tests.faults.cluster import VERIFY_KEYS, Cluster, read_topic
from tests.helpers import APPROVER_PUBLIC, approver_for, kafka_env, wait_until
from topics.codec import decode
from topics.messages import AnyResult, TaskCompleted, TaskRequested
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "manifests" / "examples" / "report-system"
GRAPHS = ROOT / "tests" / "actors" / "graphs.yaml"

TASK = """\
apiVersion: orloj.dev/v1
kind: Task
metadata:
  name: weekly-report
  labels: {{team: {team}}}
spec:
  system: report-system
  input:
    topic: AI startups
  priority: high
  retry:
    max_attempts: 3
    backoff: 5s
  requirements:
    region: default
    model: gpt-4o
"""

PAYROLL = """\
apiVersion: orloj.dev/v1
kind: Task
metadata: {name: payroll-check}
spec:
  system: solo-cautious
  input: {question: Look up the payroll.}
"""


async def _requests(kafka: KafkaSettings, names: TopicNames) -> list[TaskRequested]:
    return [decode(r.value, TaskRequested) for r in await read_topic(kafka, names.tasks)]


async def _results(kafka: KafkaSettings, names: TopicNames) -> list[AnyResult]:
    return [decode(r.value, AnyResult) for r in await read_topic(kafka, names.results)]


async def test_an_applied_task_runs_once_through_reapplies_and_a_crash(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    database_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(TASK.format(team="research"))
    first = await apply_paths(kafka_settings, topic_names, [REPORT, task])
    assert first.ok, first.errors
    again = await apply_paths(kafka_settings, topic_names, [REPORT, task])
    assert again.ok and again.no_change
    home = tmp_path / "cluster"
    home.mkdir()
    cluster = Cluster(kafka_settings, database_url, home, ledger_schema=pg_schema)

    async def submitted() -> list[TaskRequested]:
        return [
            t
            for t in await _requests(kafka_settings, topic_names)
            if t.task_id.startswith("weekly-report")
        ]

    async def completed() -> list[AnyResult]:
        return [
            r
            for r in await _results(kafka_settings, topic_names)
            if r.task_id.startswith("weekly-report")
        ]

    async def recorded() -> bool:
        run = (await read_runs(kafka_settings, topic_names)).get("weekly-report")
        return run is not None and run.phase == "Succeeded"

    try:
        # A second replica of the scheduler beside the one in `podium dev`.
        cluster.start("scheduler", "scheduler")
        cluster.start("dev", "dev")
        await cluster.wait_ready()
        await wait_until(submitted, timeout=120, interval=0.3, message="the Task submitted")
        # The Task applied anew (a new label: a new generation) while it runs: not a new run.
        task.write_text(TASK.format(team="platform"))
        third = await apply_paths(kafka_settings, topic_names, [task])
        assert third.ok and third.changed == {"Task/weekly-report": 2}
        cluster.kill("dev")
        cluster.kill("scheduler")
        cluster.start("dev-again", "dev")
        await cluster.wait_ready("dev-again")
        done = await wait_until(completed, timeout=180, interval=0.5, message="the result")
        await wait_until(recorded, timeout=60, interval=0.3, message="Succeeded recorded")
        # A restart after the end submits nothing either.
        cluster.kill("dev-again")
        cluster.start("dev-last", "dev")
        await cluster.wait_ready("dev-last")
        await wait_until(
            lambda: cluster_logged(cluster, "scheduler owns state partitions"),
            timeout=60,
            interval=0.3,
            message="the restarted scheduler owns its partitions",
        )
        requests = await submitted()
    finally:
        cluster.close()
    assert Counter(t.task_id for t in requests) == {"weekly-report": 1}, cluster.logs()
    assert [type(r) for r in done] == [TaskCompleted], cluster.logs()
    assert isinstance(done[0], TaskCompleted) and "Report:" in done[0].output
    request = requests[0]
    assert request.submitted_by == "task/weekly-report"
    assert request.input == {"topic": "AI startups"}
    assert request.labels["orloj.dev/priority"] == "high"


def cluster_logged(cluster: Cluster, line: str) -> bool:
    return any(line in log.read_text(errors="replace") for log in cluster.home.glob("dev-last*"))


async def _cli(env: dict[str, str], *args: str) -> Any:
    """`podium ARGS -o json`, in a thread (the command runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "-o", "json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_get_task_shows_waiting_approval_then_succeeded(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    database_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    task = tmp_path / "payroll.yaml"
    task.write_text(PAYROLL)
    report = await apply_paths(kafka_settings, topic_names, [GRAPHS, task])
    assert report.ok, report.errors
    home = tmp_path / "cluster"
    home.mkdir()
    (home / "stack.json").write_text("{}")  # `podium dev` records its API's address here
    cluster = Cluster(
        kafka_settings,
        database_url,
        home,
        ledger_schema=pg_schema,
        env_extra={"PODIUM_POLICY_APPROVER_KEYS": APPROVER_PUBLIC},
    )
    approver = approver_for(VERIFY_KEYS)

    def api_url() -> str | None:
        url = json.loads((home / "stack.json").read_text() or "{}").get("api_url")
        return str(url) if url else None

    async def phase_is(env: dict[str, str], phase: str) -> dict[str, Any] | None:
        value = await _cli(env, "get", "task", "payroll-check")
        return value if value["phase"] == phase else None

    try:
        cluster.start("dev", "dev")
        await cluster.wait_ready()
        url = await wait_until(api_url, timeout=30, interval=0.2, message="the API's address")
        conn = await asyncpg.connect(database_url, server_settings={"search_path": pg_schema})
        try:
            token = await create_token(conn, "reader", [Scope.AUDIT_READ])
        finally:
            await conn.close()
        env = {
            **kafka_env(kafka_settings),
            "PODIUM_API_URL": url,
            "PODIUM_API_TOKEN": token,
            "PODIUM_STACK_DIR": str(home),
        }

        async def pending() -> list[str]:
            entries = await list_approvals(kafka_settings, topic_names, approver.trusted)
            return [e.request.approval_id for e in entries if e.request.task_id == "payroll-check"]

        ids = await wait_until(pending, timeout=120, interval=0.3, message="the approval")
        waiting = await wait_until(
            lambda: phase_is(env, "WaitingApproval"), timeout=60, interval=0.5, message="waiting"
        )
        assert waiting["attempts"] == 1 and waiting["task_id"] == "payroll-check"
        await decide_approval(
            kafka_settings,
            topic_names,
            ids[0],
            signer=approver.signer,
            trusted=approver.trusted,
            granted=True,
            decided_by="alice",
            reason="ok",
        )
        done = await wait_until(
            lambda: phase_is(env, "Succeeded"), timeout=120, interval=0.5, message="Succeeded"
        )
        rows = await _cli(env, "get", "tasks")
    finally:
        cluster.close()
    assert done["output"] == "done after the approval"
    assert [a["status"] for a in done["attempt_history"]] in (["succeeded"], ["active"])
    assert [(r["name"], r["phase"]) for r in rows if r["name"] == "payroll-check"] == [
        ("payroll-check", "Succeeded")
    ]
