"""Three replicas of the join role as separate OS processes; one is killed with SIGKILL mid-run.

Every task still completes, no (task, step) transition is produced twice, and the join runs
exactly once per task: its waiting state is restored from the changelog by the survivors.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.actors.conftest import ROOT, VERIFY_KEYS, Runtime
from tests.helpers import consume_decoded, kafka_env, wait_until
from topics.messages import Step, TaskCompleted

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GRAPHS = [Path(__file__).with_name("graphs.yaml")]
TASKS = 100


def start_replica(rt: Runtime, agent: str, log: Path) -> subprocess.Popen[bytes]:
    """`podium actor AGENT` in its own process; its output goes to `log`."""
    env = {
        **os.environ,
        **kafka_env(rt.kafka),
        "PODIUM_POLICY_VERIFY_KEYS": VERIFY_KEYS,
        "PODIUM_ACTOR_SESSION_TIMEOUT_MS": "6000",
        "PODIUM_ACTOR_GRACE_S": "3",
        "PODIUM_ACTOR_MAX_IN_FLIGHT": "16",
        "PODIUM_ACTOR_PYTHON_TOOL_MODULES": "tests.actors",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from podium.cli import main; main()", "actor", agent],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def exited(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:  # noqa: ASYNC109
    """Wait until every process of `procs` has exited (and is reaped), without blocking the
    event loop: the in-process actors must go on heartbeating, or their sessions expire and the
    runtime stops in the middle of a rebalance."""
    await wait_until(
        lambda: all(p.poll() is not None for p in procs), timeout=timeout, message="exited"
    )


async def test_killed_replica_loses_nothing_and_duplicates_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    runtime.kafka = runtime.kafka.model_copy(update={"partitions": 6})
    await runtime.start(GRAPHS, actors=["lead", "fin", "legal", "tech"])
    replicas = [start_replica(runtime, "report", tmp_path / f"report-{i}.log") for i in range(3)]
    try:
        task_ids = [f"kill-{i:03d}" for i in range(TASKS)]
        for task_id in task_ids:
            await runtime.submit("fanout", f"Assess deal {task_id}.", task_id=task_id)
        # kill one replica once some, not all, tasks are done
        await wait_until(lambda: len(runtime.collector.results) >= 10, timeout=120)
        assert len(runtime.collector.results) < TASKS, "too late to kill mid-run"
        replicas[0].send_signal(signal.SIGKILL)
        await exited(replicas[:1], timeout=10)
        await wait_until(
            lambda: all(runtime.collector.results.get(t) for t in task_ids),
            timeout=170,
            message="every task has a result",
        )
        await wait_until(
            lambda: all(runtime.collector.of_type(t, "task.completed") for t in task_ids),
            timeout=30,
        )
        for task_id in task_ids:
            results = runtime.collector.results[task_id]
            assert len(results) == 1 and isinstance(results[0], TaskCompleted), results
            done = runtime.collector.of_type(task_id, "step.completed")
            keys = [(e.task_id, e.step_id) for e in done]
            assert len(keys) == len(set(keys)), f"a step of {task_id} completed twice"
            agents = collections.Counter(e.agent for e in done)
            assert agents == {"lead": 1, "fin": 1, "legal": 1, "tech": 1, "report": 1}
            report = [
                e for e in runtime.collector.of_type(task_id, "step.started") if e.agent == "report"
            ]
            # step.started goes out at call time: a step re-run after the kill repeats it with
            # the same event id (the ledger keeps one)
            assert len({e.event_id for e in report}) == 1
            assert len(report[0].data["upstream"]) == 3
        # the steps sent to the join role: exactly 3 per task, never one twice
        steps = await consume_decoded(
            runtime.kafka, runtime.names.agent("report"), 3 * TASKS, Step, timeout=60
        )
        ids = [(s.task_id, s.step_id) for s in steps]
        assert len(ids) == 3 * TASKS == len(set(ids))
    finally:
        for proc in replicas:
            if proc.poll() is None:
                proc.terminate()
        with contextlib.suppress(AssertionError):
            await exited(replicas, timeout=20)
        for proc in replicas:
            if proc.poll() is None:
                proc.kill()
                await exited([proc], timeout=10)
