"""Poison never loops: a step whose output cannot be produced fails its task once, goes to the
agent's DLQ with the reason, and its partition moves on; its model calls are not repeated."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.actors.conftest import Runtime
from tests.badinput.conftest import dead_letters
from tests.badinput.payloads import partition_of
from tests.helpers import wait_until
from topics.messages import TaskCompleted, TaskFailed

pytestmark = pytest.mark.integration

GRAPHS = [Path(__file__).parents[1] / "actors" / "graphs.yaml"]
HUGE = 4_500_000
"""A task input whose delegation record (the input twice) is over the topics' 8 MB limit."""


def same_partition_id(task_id: str, partitions: int) -> str:
    """Another task id whose records land on the partition of `task_id`'s."""
    wanted = partition_of(task_id.encode(), partitions)
    while True:
        candidate = f"task-{uuid.uuid4().hex[:10]}"
        if partition_of(candidate.encode(), partitions) == wanted:
            return candidate


async def test_an_oversized_delegation_fails_its_task_once(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["sup", "w1", "w2"])
    poisoned = await runtime.submit("hierarchy", "z" * HUGE)
    result = await runtime.result(poisoned, timeout=45)
    assert isinstance(result, TaskFailed), result
    assert "bytes" in result.error and "limit" in result.error, result.error
    assert result.failed_agent == "sup"
    await wait_until(lambda: runtime.collector.of_type(poisoned, "task.failed"))
    # The partition moves on: the next task on it completes.
    following = same_partition_id(poisoned, runtime.kafka.partitions)
    await runtime.submit("hierarchy", "Write a memo.", task_id=following)
    assert isinstance(await runtime.result(following, timeout=45), TaskCompleted)
    letters = await dead_letters(
        runtime.kafka, runtime.names.agent_dlq("sup"), runtime.names.agent("sup")
    )
    assert any("limit" in reason for reason in letters.values()), letters
    calls = [e for e in runtime.collector.of_type(poisoned, "model.called") if e.agent == "sup"]
    assert len(calls) == 1, calls
