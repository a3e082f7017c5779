"""The step transition as a pure function: a step and its result in, the effects out (no broker)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from actors.providers.base import ToolCall
from actors.results import AwaitingApproval, Delegated, Failed, Finished
from actors.routing import delegated_step_id, resumed_step_id
from actors.transition import (
    DEFAULT_APPROVAL_TTL_S,
    CompleteTask,
    EmitEvent,
    FailStep,
    RequestApproval,
    SendStep,
    Transition,
    failure,
    transition,
)
from topics.messages import (
    ApprovalRequestedData,
    ApprovalResume,
    Decision,
    Delegation,
    DelegationResume,
    JoinTicket,
    PathUsage,
    Step,
    StepCompletedData,
    ToolAnswer,
)
from topics.routing import JoinRule, RouteEdge, RouteNode, RoutingTable

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
USAGE = PathUsage(tokens=30, cost_usd=0.25, priced_calls=2)


def node(agent: str, edges: list[RouteEdge] | None = None, **kw: object) -> RouteNode:
    return RouteNode(
        agent=agent, topic=f"p.agent.{agent}", group=f"p.actor.{agent}", edges=edges or [], **kw
    )  # type: ignore[arg-type]


def table(*nodes: RouteNode) -> RoutingTable:
    return RoutingTable(system="sys", entry=[nodes[0].agent], nodes={n.agent: n for n in nodes})


def step(agent: str, step_id: str = "s1", **kw: object) -> Step:
    return Step(task_id="t1", system="sys", agent=agent, step_id=step_id, task_input="x", **kw)  # type: ignore[arg-type]


def finished(output: str = "done", outcome: str | None = None, calls: int = 1) -> Finished:
    return Finished(output=output, outcome=outcome, turns=1, model_calls=calls)


def run(s: Step, result: object, t: RoutingTable | None) -> Transition:
    n = t.nodes.get(s.agent) if t is not None else None
    return transition(s, result, node=n, table=t, usage=USAGE, now=NOW)  # type: ignore[arg-type]


def completed(t: Transition) -> StepCompletedData:
    [event] = [e for e in t.events if isinstance(e, StepCompletedData)]
    return event


def test_next_edge_sends_one_step_carrying_the_path_state() -> None:
    t = table(node("a", [RouteEdge(to="b", kind="next")]), node("b"))
    after = run(step("a", model_calls={"x": 2}), finished(calls=3), t)
    [child] = after.steps
    assert child.agent == "b" and child.upstream[0].output == "done"
    assert child.iterations == {"a": 1} and child.model_calls == {"x": 2, "a": 3}
    assert child.usage == USAGE
    assert completed(after).next == ["b"] and after.completes_task is None
    assert isinstance(after.effects[0], SendStep) and isinstance(after.effects[1], EmitEvent)
    # deterministic: the same input gives the same step ids
    again = run(step("a", model_calls={"x": 2}), finished(calls=3), t)
    assert [s.step_id for s in again.steps] == [child.step_id]


def test_no_edge_ends_the_task_with_the_steps_output() -> None:
    after = run(step("b"), finished("final"), table(node("b")))
    assert after.steps == [] and completed(after).next == []
    assert after.completes_task is not None
    assert after.completes_task.output.output == "final" and after.completes_task.usage == USAGE
    assert isinstance(after.effects[-1], CompleteTask)
    # an agent outside the routing table also ends the task
    assert run(step("z"), finished(), None).completes_task is not None


def test_fan_out_gives_each_branch_a_join_ticket() -> None:
    t = table(
        node("lead", [RouteEdge(to=a, kind="fan_out") for a in ("fin", "legal", "tech")]),
        *(node(a, [RouteEdge(to="report", kind="next")]) for a in ("fin", "legal", "tech")),
        node("report", join=JoinRule(inputs=["fin", "legal", "tech"])),
    )
    after = run(step("lead", "lead-1"), finished(), t)
    assert [s.agent for s in after.steps] == ["fin", "legal", "tech"]
    for child in after.steps:
        ticket = JoinTicket(
            join_id="lead-1", branches=3, branch=child.agent, join_agent="report", base_usage=USAGE
        )
        assert child.join == ticket and child.join_stack == [ticket]
    assert completed(after).next == ["fin", "legal", "tech"]
    # a branch passes its ticket on to the join
    branch = after.steps[0]
    [to_join] = run(branch, finished(), t).steps
    assert to_join.agent == "report" and to_join.join_stack == branch.join_stack


def test_conditional_edge_is_chosen_by_outcome_with_a_default() -> None:
    t = table(
        node(
            "triage",
            [
                RouteEdge(to="billing", kind="conditional", when="billing"),
                RouteEdge(to="general", kind="next"),
            ],
            outcomes=["billing"],
        ),
        node("billing"),
        node("general"),
    )
    chosen = run(step("triage"), finished(outcome="billing"), t)
    assert [s.agent for s in chosen.steps] == ["billing"]
    assert completed(chosen).outcome == "billing"
    # an outcome the node does not know counts as none: the default edge
    default = run(step("triage"), finished(outcome="refund"), t)
    assert [s.agent for s in default.steps] == ["general"] and completed(default).outcome is None


def test_loop_goes_round_then_exits_on_exit_when_or_max_iterations() -> None:
    t = table(
        node(
            "critic",
            [RouteEdge(to="drafter", kind="loop")],
            exit_when="approved",
            max_iterations=2,
            outcomes=["approved", "continue"],
        ),
        node("drafter", [RouteEdge(to="critic", kind="next")]),
    )
    again = run(step("critic"), finished(outcome="continue"), t)
    assert [s.agent for s in again.steps] == ["drafter"] and completed(again).loop_exit is None
    assert again.steps[0].iterations == {"critic": 1} and again.completes_task is None
    done = run(step("critic"), finished("ok", outcome="approved"), t)
    assert done.steps == [] and completed(done).loop_exit == "exit_when"
    assert done.completes_task is not None and done.completes_task.output.output == "ok"
    capped = run(step("critic", iterations={"critic": 1}), finished(outcome="continue"), t)
    assert capped.steps == [] and completed(capped).loop_exit == "max_iterations"
    assert capped.completes_task is not None


def test_delegation_parks_the_supervisor_and_the_answer_goes_back() -> None:
    t = table(node("sup", [RouteEdge(to="w1", kind="delegate")]), node("w1"))
    sup = step("sup", "sup-1", model_calls={"sup": 1})
    result = Delegated(
        worker="w1",
        instruction="collect the facts",
        tool_call_id="call-1",
        conversation={"messages": [], "turns": 1},
        model_calls=2,
    )
    after = run(sup, result, t)
    [worker] = after.steps
    assert worker.agent == "w1" and worker.instruction == "collect the facts"
    assert worker.step_id == delegated_step_id("sup-1", "call-1", "w1")
    assert worker.delegation is not None and worker.delegation.supervisor == "sup"
    assert worker.model_calls == {"sup": 2} and worker.usage == USAGE
    [parked] = [e for e in after.effects if isinstance(e, EmitEvent)]
    assert parked.suffix == f"delegated:{worker.step_id}"
    assert after.completes_task is None
    # the worker's answer returns to the supervisor (not along the worker's edges)
    back = run(worker, finished("facts"), t)
    [answer] = back.steps
    assert answer.agent == "sup"
    assert answer.step_id == resumed_step_id("sup", "sup-1", "delegation", "call-1")
    assert answer.resume == DelegationResume(
        conversation={"messages": [], "turns": 1},
        tool_result=ToolAnswer(
            tool_call_id="call-1", name="delegate", content="w1 answered:\nfacts"
        ),
    )
    assert back.completes_task is None
    assert completed(back).next == ["sup"]


def test_approval_parks_the_step_in_the_request() -> None:
    call = ToolCall(id="call-7", name="wire-money", arguments={"amount": 5, "api_key": "secret"})
    decision = Decision(
        request_id="r-1", task_id="t1", decision="approval_required", reason="big", approval_id="ap"
    )
    result = AwaitingApproval(
        approval_id="ap",
        decision=decision,
        tool_call=call,
        conversation={"messages": [], "turns": 1},
        model_calls=1,
    )
    after = run(step("cautious"), result, table(node("cautious")))
    [request] = [e.request for e in after.effects if isinstance(e, RequestApproval)]
    assert after.steps == [] and after.completes_task is None
    assert request.approval_id == "ap" and request.request.tool == "wire-money"
    assert request.expires_at == NOW + timedelta(seconds=DEFAULT_APPROVAL_TTL_S)
    assert request.arguments["amount"] == 5 and request.arguments["api_key"] != "secret"
    parked = request.step
    assert parked.model_calls == {"cautious": 1} and parked.usage == USAGE
    assert parked.resume == ApprovalResume(
        conversation={"messages": [], "turns": 1}, tool_call_id="call-7"
    )
    [event] = [e for e in after.effects if isinstance(e, EmitEvent)]
    assert isinstance(event.payload, ApprovalRequestedData)
    assert event.suffix == "approval.requested:ap"


def test_failure_fails_the_task_and_notifies_the_joins_on_the_way() -> None:
    ticket = JoinTicket(join_id="lead-1", branches=3, branch="fin", join_agent="report")
    branch = step("fin", "fin-1", join=ticket, join_stack=[ticket])
    after = run(branch, Failed(error="boom", model_calls=1), None)
    assert after.failure == FailStep(error="boom", usage=USAGE)
    [notice] = after.steps
    assert notice.agent == "report" and notice.abandoned == "boom" and notice.join == ticket
    # a step on no join's way fails alone
    assert failure(step("solo"), "boom", USAGE).steps == []


def test_a_delegated_worker_that_fails_notifies_its_supervisors_joins() -> None:
    ticket = JoinTicket(join_id="r-1", branches=2, branch="sup", join_agent="j")
    worker = step(
        "w1",
        delegation=Delegation(
            supervisor="sup",
            supervisor_step_id="sup-1",
            tool_call_id="c",
            state={
                "join_stack": [
                    {"join_id": "r-1", "branches": 2, "branch": "sup", "join_agent": "j"}
                ]
            },
        ),
    )
    [notice] = failure(worker, "boom", USAGE).steps
    assert notice.agent == "j" and notice.join == ticket


def test_the_decisions_import_no_kafka() -> None:
    code = (
        "import sys, actors.transition, actors.routing, actors.joins; "
        "assert 'aiokafka' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
