"""An applied Task's retries on the real broker: the scheduler (in this process) submits attempt 1,
and each failure written to `podium.results` (as the runtime writes it) starts the next attempt
after Orloj's doubling backoff, until `retry.max_attempts`: then DeadLetter. A refusal (denied
by policy) is Failed after one attempt. Each attempt is submitted once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from manifests.catalog import Catalog
from manifests.loader import load_paths
from podium.core.settings import KafkaSettings
from scheduler.runs import RunState
from scheduler.service import SchedulerService
from scheduler.settings import SchedulerSettings
from scheduler.status import read_runs
from tests.faults.cluster import read_topic
from tests.helpers import wait_until
from topics.codec import decode, encode, headers_for
from topics.kafka import make_producer
from topics.messages import TaskFailed, TaskRequested
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "manifests" / "examples" / "report-system"

TASKS = """\
apiVersion: orloj.dev/v1
kind: Task
metadata: {name: flaky}
spec:
  system: report-system
  input: {topic: retries}
  retry: {max_attempts: 3, backoff: 1s}
---
apiVersion: orloj.dev/v1
kind: Task
metadata: {name: refused}
spec:
  system: report-system
  retry: {max_attempts: 3, backoff: 1s}
"""


@dataclass
class _Source:
    catalog: Catalog


async def _requests(kafka: KafkaSettings, names: TopicNames) -> list[TaskRequested]:
    return [decode(r.value, TaskRequested) for r in await read_topic(kafka, names.tasks)]


async def test_failed_attempts_retry_with_backoff_then_dead_letter(
    kafka_settings: KafkaSettings, topic_names: TopicNames, tmp_path: Path
) -> None:
    file = tmp_path / "tasks.yaml"
    file.write_text(TASKS)
    loaded = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file], topic_names)
    assert loaded.catalog is not None, loaded.errors
    service = SchedulerService(
        kafka_settings,
        topic_names,
        settings=SchedulerSettings(tick_s=0.2, session_timeout_ms=6000),
        catalog=_Source(loaded.catalog),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    producer = make_producer(kafka_settings)
    await producer.start()

    async def submitted(task_id: str) -> TaskRequested | None:
        found = [t for t in await _requests(kafka_settings, topic_names) if t.task_id == task_id]
        return found[0] if found else None

    async def fail(task_id: str, error: str) -> TaskFailed:
        result = TaskFailed(task_id=task_id, system="report-system", error=error)
        await producer.send_and_wait(
            topic_names.results,
            key=task_id.encode(),
            value=encode(result),
            headers=headers_for(result),
        )
        return result

    async def phase_of(name: str, phase: str) -> RunState | None:
        run = (await read_runs(kafka_settings, topic_names)).get(name)
        return run if run is not None and run.phase == phase else None

    try:
        first = await wait_until(
            lambda: submitted("flaky"), timeout=60, interval=0.2, message="attempt 1"
        )
        assert first.submitted_by == "task/flaky"
        assert first.input == {"topic": "retries"}
        assert first.labels["orloj.dev/task-attempt"] == "1"
        await wait_until(lambda: submitted("refused"), timeout=60, interval=0.2, message="refused")
        await fail("refused", "writer: model gpt-4o on openai denied by policy (x): not allowed")
        for number, backoff in ((2, 1.0), (3, 2.0)):
            failed = await fail(
                first.task_id if number == 2 else f"flaky:attempt-{number - 1}", "boom"
            )
            retry = await wait_until(
                lambda n=number: submitted(f"flaky:attempt-{n}"),
                timeout=60,
                interval=0.2,
                message=f"attempt {number}",
            )
            assert retry.labels["orloj.dev/task-attempt"] == str(number)
            assert retry.submitted_at is not None
            # Not before the backoff after the failure (doubled per attempt).
            assert retry.submitted_at >= failed.finished_at + timedelta(seconds=backoff)
        await fail("flaky:attempt-3", "boom again")
        dead = await wait_until(
            lambda: phase_of("flaky", "DeadLetter"), timeout=60, interval=0.2, message="DeadLetter"
        )
        refused = await wait_until(
            lambda: phase_of("refused", "Failed"), timeout=60, interval=0.2, message="Failed"
        )
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, timeout=30)
        await producer.stop()
    assert [a.task_id for a in dead.attempts] == ["flaky", "flaky:attempt-2", "flaky:attempt-3"]
    assert [a.status for a in dead.attempts] == ["failed"] * 3
    assert dead.last_error == "boom again"
    assert len(refused.attempts) == 1 and "denied by policy" in refused.last_error
    # Each attempt submitted once, and nothing after the last.
    counts = Counter(t.task_id for t in await _requests(kafka_settings, topic_names))
    assert counts == {"flaky": 1, "flaky:attempt-2": 1, "flaky:attempt-3": 1, "refused": 1}
