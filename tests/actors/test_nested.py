"""Nested fan-outs, a branch that fails, and what a task's result says it cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import TopicPartition

from tests.actors.conftest import RESEARCH_FILES, Runtime
from tests.helpers import wait_until
from topics.kafka import make_consumer
from topics.messages import AnyResult, Event, ModelCalledData, TaskCompleted, TaskFailed, payload_of

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
NESTED = [HERE / "nested.yaml"]
GRAPHS = [HERE / "graphs.yaml"]
NESTED_AGENTS = ["na", "nb", "nb1", "nb2", "nfail", "nb3", "nc", "nd"]


def last_runs(rt: Runtime, task_id: str, type_: str) -> list[Event]:
    """The task's `type_` events of each step's last run. A step in flight when its partition
    is revoked (on a busy machine sessions expire, and groups rebalance) runs again from the
    start: it writes `step.started` again (same event id) and repeats its model calls. The
    ledger records both runs' calls, as both cost money; the result counts the run that
    committed, the last (a task's events share one partition, so they arrive in order)."""
    runs: dict[str, list[Event]] = {}
    for e in rt.collector.events.get(task_id, []):
        if e.type == "step.started":
            runs[e.step_id] = []
        elif e.type == type_:
            runs.setdefault(e.step_id, []).append(e)
    return [e for events in runs.values() for e in events]


def calls_of(rt: Runtime, task_id: str) -> list[ModelCalledData]:
    """The model calls a task's result counts (see `last_runs`)."""
    return [payload_of(e, ModelCalledData) for e in last_runs(rt, task_id, "model.called")]


def assert_usage_adds_up(rt: Runtime, task_id: str, result: AnyResult) -> None:
    """The result's cost and tokens are the sum of the task's `model.called` events."""
    calls = calls_of(rt, task_id)
    assert calls
    priced = [c.cost_usd for c in calls if c.cost_usd is not None]
    assert result.total_tokens == sum(c.input_tokens + c.output_tokens for c in calls)
    assert result.unpriced_calls == len(calls) - len(priced)
    if priced:
        assert result.cost_usd == pytest.approx(sum(priced), rel=1e-9)
    else:
        assert result.cost_usd is None


async def settled_calls(rt: Runtime, task_id: str, n: int) -> None:
    """Usage events are produced at call time, outside the step transactions, and may be read
    after the result. The task's own last event comes after every event of the runs its result
    counts (a task's events share one partition): wait for it, then for `n` calls."""
    await wait_until(
        lambda: (
            rt.collector.of_type(task_id, "task.completed")
            or rt.collector.of_type(task_id, "task.failed")
        ),
        timeout=60,
        message=f"the last event of {task_id}",
    )
    await wait_until(lambda: len(calls_of(rt, task_id)) >= n, timeout=60)


async def changelog(rt: Runtime, agent: str) -> tuple[int, dict[str, bytes]]:
    """(records written, the state they leave) of an agent's join changelog, read to its end."""
    topic = rt.names.agent_joins(agent)
    reader = make_consumer(rt.kafka, group_id=None, fetch_max_wait_ms=50)
    state: dict[str, bytes] = {}
    written = 0
    try:
        await reader.start()
        tps = [TopicPartition(topic, p) for p in range(rt.kafka.partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        for tp in tps:
            while await reader.position(tp) < ends[tp]:
                for record in (await reader.getmany(tp, timeout_ms=200)).get(tp, []):
                    written += 1
                    key = (record.key or b"").decode()
                    if record.value is None:
                        state.pop(key, None)
                    else:
                        state[key] = record.value
    finally:
        await reader.stop()
    return written, state


def ran(rt: Runtime, task_id: str, type_: str) -> list[str]:
    """The agents of the task's `type_` events, in order, each event once: a step that runs
    again (see `last_runs`) writes its `step.started` again with the same id."""
    events: list[Event] = rt.collector.of_type(task_id, type_)
    unique: dict[str, Event] = {}
    for e in events:
        unique.setdefault(e.event_id, e)
    return [e.agent for e in unique.values()]


async def test_demo_task_cost_is_the_sum_of_its_model_calls(runtime: Runtime) -> None:
    await runtime.start(RESEARCH_FILES)
    task_id = await runtime.submit("research-pipeline", "AI agent governance in the enterprise")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    await settled_calls(runtime, task_id, 4)
    assert result.cost_usd is not None and result.cost_usd > 0
    assert result.unpriced_calls == 0
    assert_usage_adds_up(runtime, task_id, result)


async def test_delegated_usage_returns_to_the_supervisor(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["sup", "w1", "w2"])
    task_id = await runtime.submit("hierarchy", "Write a memo.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    await settled_calls(runtime, task_id, 5)
    # The test endpoint has no prices: every call is counted as unpriced, none is invented.
    assert result.unpriced_calls == 5 and result.cost_usd is None
    assert_usage_adds_up(runtime, task_id, result)


async def test_nested_fan_out_joins_inner_then_outer_once(runtime: Runtime) -> None:
    await runtime.start(NESTED, actors=NESTED_AGENTS)
    task_id = await runtime.submit("nested", "Plan the offsite.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    done = ran(runtime, task_id, "step.completed")
    assert sorted(done) == ["na", "nb", "nb1", "nb2", "nb3", "nc", "nd"]
    assert done[0] == "na" and done[-1] == "nd"
    assert done.index("nb3") > max(done.index("nb1"), done.index("nb2"))
    started = {e.agent: e for e in runtime.collector.of_type(task_id, "step.started")}
    assert len(started["nb3"].data["upstream"]) == 2
    assert len(started["nd"].data["upstream"]) == 2
    assert ran(runtime, task_id, "step.started").count("nd") == 1
    # Every model call is counted once: the fan-out's usage is not multiplied by its branches.
    await settled_calls(runtime, task_id, 7)
    assert len(calls_of(runtime, task_id)) == 7
    assert_usage_adds_up(runtime, task_id, result)
    for join in ("nb3", "nd"):
        written, state = await changelog(runtime, join)
        assert written > 0 and not state, (join, state)


async def test_failed_branch_clears_every_join_it_was_headed_for(runtime: Runtime) -> None:
    await runtime.start(NESTED, actors=NESTED_AGENTS)
    task_id = await runtime.submit("nested-fail", "Plan the offsite.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskFailed), result
    assert result.failed_agent == "nfail" and "max_steps" in result.error
    # nb1 waits at the inner join nb3, nc at the outer join nd; the failed branch's notices
    # count as its arrival at both, so both joins' waiting states end as tombstones.

    async def cleared(agent: str) -> bool:
        written, state = await changelog(runtime, agent)
        return written >= 2 and not state

    await wait_until(lambda: cleared("nb3"), timeout=60, message="nb3's join state cleared")
    await wait_until(lambda: cleared("nd"), timeout=60, message="nd's join state cleared")
    completed = ran(runtime, task_id, "step.completed")
    assert sorted(completed) == ["na", "nb", "nb1", "nc"]
    assert "nb3" not in ran(runtime, task_id, "step.started")
    assert "nd" not in ran(runtime, task_id, "step.started")
    assert len(runtime.collector.results[task_id]) == 1
    # The failure's cost is what its path spent: na, nb and nfail's two turns.
    await settled_calls(runtime, task_id, 6)
    path = [
        payload_of(e, ModelCalledData).cost_usd or 0.0
        for e in last_runs(runtime, task_id, "model.called")
        if e.agent in ("na", "nb", "nfail")
    ]
    assert len(path) == 4
    assert result.cost_usd == pytest.approx(sum(path), rel=1e-9)
