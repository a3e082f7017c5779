"""Every graph pattern, and the failure paths, on the real stack (in-process services)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from tests.actors.conftest import Runtime
from tests.helpers import consume_decoded, wait_until
from topics.kafka import make_consumer
from topics.messages import DeadLetter, TaskCompleted, TaskFailed

pytestmark = pytest.mark.integration

GRAPHS = [Path(__file__).with_name("graphs.yaml")]


def completed_agents(rt: Runtime, task_id: str) -> list[str]:
    return [e.agent for e in rt.collector.of_type(task_id, "step.completed")]


async def test_fan_out_join_runs_once_with_every_branch(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["lead", "fin", "legal", "tech", "report"])
    task_id = await runtime.submit("fanout", "Assess the acquisition.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    agents = completed_agents(runtime, task_id)
    assert agents[0] == "lead" and agents[-1] == "report"
    assert sorted(agents[1:4]) == ["fin", "legal", "tech"]
    assert agents.count("report") == 1
    started = runtime.collector.of_type(task_id, "step.started")
    report = [e for e in started if e.agent == "report"]
    assert len(report) == 1 and len(report[0].data["upstream"]) == 3
    lead = runtime.collector.of_type(task_id, "step.completed")[0]
    assert sorted(lead.data["next"]) == ["fin", "legal", "tech"]


async def test_branches_meeting_without_join_are_joined_once(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["lead", "fin", "legal", "report"])
    task_id = await runtime.submit("fanin-implicit", "Assess the acquisition.")
    assert isinstance(await runtime.result(task_id), TaskCompleted)
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    agents = completed_agents(runtime, task_id)
    assert agents.count("report") == 1, agents
    (report,) = [
        e for e in runtime.collector.of_type(task_id, "step.started") if e.agent == "report"
    ]
    assert len(report.data["upstream"]) == 2
    assert len(runtime.collector.of_type(task_id, "task.completed")) == 1


async def test_an_implicit_join_on_a_single_path_runs_at_once(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["triage", "billing", "general", "report"])
    task_id = await runtime.submit("helpdesk-report", "My invoice is wrong.")
    assert isinstance(await runtime.result(task_id), TaskCompleted)
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    assert completed_agents(runtime, task_id) == ["triage", "billing", "report"]


async def test_supervisor_delegates_and_gets_the_results_back(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["sup", "w1", "w2"])
    task_id = await runtime.submit("hierarchy", "Write a memo.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    assert result.output == "supervisor summary"
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    assert completed_agents(runtime, task_id) == ["sup", "w1", "sup", "w2", "sup"]
    done = runtime.collector.of_type(task_id, "step.completed")
    assert done[1].data["next"] == ["sup"] and done[3].data["next"] == ["sup"]
    # the worker's answer went back into the supervisor's conversation (3 model calls in all,
    # each `delegate` between them a call of its own: indexes 1 and 3)
    calls = [e for e in runtime.collector.of_type(task_id, "model.called") if e.agent == "sup"]
    assert [e.data["call_index"] for e in calls] == [0, 2, 4]
    assert calls[2].data["input_tokens"] > calls[0].data["input_tokens"]


async def test_delegation_is_authorized_and_blocked_tools_can_deny_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    """`delegate` is a tool call like any other: an AgentPolicy's `blocked_tools: [delegate]`
    denies it (recorded as a denied `tool.called`, the refusal goes back to the supervisor's
    model), and no worker runs."""
    policy = tmp_path / "no-delegation.yaml"
    policy.write_text(
        "apiVersion: orloj.dev/v1\n"
        "kind: AgentPolicy\n"
        "metadata: {name: no-delegation}\n"
        "spec:\n"
        "  target_systems: [hierarchy]\n"
        "  blocked_tools: [delegate]\n"
    )
    await runtime.start([*GRAPHS, policy], actors=["sup", "w1", "w2"])
    task_id = await runtime.submit("hierarchy", "Write a memo.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    assert completed_agents(runtime, task_id) == ["sup"]
    decided = {
        e.event_id: (e.data["decision"], e.data["rule"])
        for e in runtime.collector.of_type(task_id, "policy.decided")
        if e.data["tool"] == "delegate"
    }
    assert list(decided.values()) == [("deny", "denied_tools")] * 2
    called = runtime.collector.of_type(task_id, "tool.called")
    assert [(e.data["tool"], e.data["status"]) for e in called] == [("delegate", "denied")] * 2


async def test_an_allowed_delegation_is_decided_and_recorded(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["sup", "w1", "w2"])
    task_id = await runtime.submit("hierarchy", "Write a memo.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted), result
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    decided = {
        e.event_id: e.data["decision"]
        for e in runtime.collector.of_type(task_id, "policy.decided")
        if e.data["tool"] == "delegate"
    }
    assert list(decided.values()) == ["allow", "allow"], decided
    called = runtime.collector.of_type(task_id, "tool.called")
    assert [(e.data["tool"], e.data["status"]) for e in called] == [("delegate", "ok")] * 2
    assert {e.data["arguments"]["agent"] for e in called} == {"w1", "w2"}


async def test_loop_exits_by_exit_when_and_by_max_iterations(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["drafter", "critic", "scribe", "harsh"])
    approved = await runtime.submit("review-loop", "Draft a press release.")
    capped = await runtime.submit("capped-loop", "Draft a press release.")
    assert isinstance(await runtime.result(approved), TaskCompleted)
    assert isinstance(await runtime.result(capped), TaskCompleted)
    await wait_until(lambda: runtime.collector.of_type(approved, "task.completed"))
    await wait_until(lambda: runtime.collector.of_type(capped, "task.completed"))
    assert completed_agents(runtime, approved) == ["drafter", "critic", "drafter", "critic"]
    last = runtime.collector.of_type(approved, "step.completed")[-1]
    assert last.data["outcome"] == "approved" and last.data["loop_exit"] == "exit_when"
    assert completed_agents(runtime, capped) == ["scribe", "harsh", "scribe", "harsh"]
    last = runtime.collector.of_type(capped, "step.completed")[-1]
    assert last.data["loop_exit"] == "max_iterations"
    first_critic = runtime.collector.of_type(approved, "step.completed")[1]
    assert first_critic.data["loop_exit"] is None and first_critic.data["next"] == ["drafter"]


async def test_conditional_edge_follows_the_outcome(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["triage", "billing", "general"])
    task_id = await runtime.submit("helpdesk", "My invoice is wrong.")
    assert isinstance(await runtime.result(task_id), TaskCompleted)
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    assert completed_agents(runtime, task_id) == ["triage", "billing"]
    assert runtime.collector.of_type(task_id, "step.completed")[0].data["outcome"] == "billing"


async def test_max_steps_exhausted_fails_the_task_and_dead_letters(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["busy"])
    task_id = await runtime.submit("solo-busy", "Search forever.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskFailed)
    assert "max_steps exhausted" in result.error and result.failed_agent == "busy"
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.failed"))
    assert runtime.collector.of_type(task_id, "step.failed")
    letters = await consume_decoded(
        runtime.kafka, runtime.names.agent_dlq("busy"), 1, DeadLetter, timeout=30
    )
    assert "max_steps" in letters[0].reason


async def test_timeout_fails_the_task(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["sleepy"])
    task_id = await runtime.submit("solo-sleepy", "Wait.")
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskFailed)
    assert "timeout" in result.error


async def test_tool_error_goes_back_to_the_model(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["careless"])
    task_id = await runtime.submit("solo-careless", "Look it up.")
    result = await runtime.result(task_id)
    assert isinstance(result, TaskCompleted)
    assert result.output == "answered despite the tool error"
    await wait_until(lambda: runtime.collector.of_type(task_id, "tool.called"))
    call = runtime.collector.of_type(task_id, "tool.called")[0]
    assert call.data["status"] == "error" and call.data["tool"] == "broken-search"
    assert call.data["idempotency_key"].startswith(f"{task_id}/")


async def test_duplicate_submission_runs_once(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=["triage", "billing", "general"])
    await runtime.submit("helpdesk", "first", task_id="dup-1")
    await runtime.submit("helpdesk", "second", task_id="dup-1")
    assert isinstance(await runtime.result("dup-1"), TaskCompleted)
    # both submissions were consumed (the dispatcher's committed offset passed them)
    consumer = make_consumer(runtime.kafka, group_id=runtime.names.dispatcher_group)
    try:
        await consumer.start()

        async def consumed_both() -> bool:
            total = 0
            for p in range(runtime.kafka.partitions):
                total += await consumer.committed(TopicPartition(runtime.names.tasks, p)) or 0
            return total >= 2

        await wait_until(consumed_both, timeout=30)
    finally:
        await consumer.stop()
    await wait_until(lambda: runtime.collector.of_type("dup-1", "task.completed"))
    assert len(runtime.collector.of_type("dup-1", "task.started")) == 1
    assert len(runtime.collector.results["dup-1"]) == 1
    assert completed_agents(runtime, "dup-1") == ["triage", "billing"]


async def test_malformed_submissions_are_dead_lettered_and_fail(runtime: Runtime) -> None:
    await runtime.start(GRAPHS, actors=[])
    await runtime.send_raw(b"bad-json", b"{this is not json")
    await runtime.send_raw(
        b"no-system", json.dumps({"task_id": "no-system", "input": "x"}).encode()
    )
    await runtime.send_raw(
        b"v9",
        json.dumps({"schema_version": 9, "task_id": "v9", "system": "x", "input": "x"}).encode(),
    )
    await runtime.send_raw(
        b"unknown-sys",
        json.dumps({"task_id": "unknown-sys", "system": "nope", "input": "x"}).encode(),
    )
    letters = await consume_decoded(
        runtime.kafka, runtime.names.tasks_dlq, 4, DeadLetter, timeout=60
    )
    reasons = {(letter.key or b"").decode(): letter.reason for letter in letters}
    assert "not valid JSON" in reasons["bad-json"]
    assert "system" in reasons["no-system"]
    assert "schema_version" in reasons["v9"]
    assert "not applied" in reasons["unknown-sys"]
    for task_id in ("bad-json", "no-system", "v9", "unknown-sys"):
        result = await runtime.result(task_id, timeout=30)
        assert isinstance(result, TaskFailed)
        await wait_until(lambda t=task_id: runtime.collector.of_type(t, "task.failed"))
