"""Routing decisions as pure functions: which edges a finished step follows, and the steps."""

from __future__ import annotations

from actors.routing import (
    choose_edges,
    entry_steps,
    join_key,
    merged_step,
    next_steps,
    visits_of,
)
from topics.messages import JoinTicket, Step, StepOutput
from topics.routing import JoinRule, RouteEdge, RouteNode, RoutingTable


def node(agent: str, edges: list[RouteEdge], **kw: object) -> RouteNode:
    return RouteNode(
        agent=agent, topic=f"p.agent.{agent}", group=f"p.actor.{agent}", edges=edges, **kw
    )  # type: ignore[arg-type]


def step(agent: str, step_id: str = "s1", **kw: object) -> Step:
    return Step(task_id="t1", system="sys", agent=agent, step_id=step_id, task_input="x", **kw)  # type: ignore[arg-type]


def test_pipeline_follows_next_and_ends_without_edges() -> None:
    route = choose_edges(node("a", [RouteEdge(to="b", kind="next")]), None, 1)
    assert [e.to for e in route.edges] == ["b"] and not route.ends_task and route.loop_exit is None
    assert choose_edges(node("c", []), None, 1).ends_task


def test_conditional_edges_select_on_outcome_with_default() -> None:
    n = node(
        "triage",
        [
            RouteEdge(to="billing", kind="conditional", when="billing"),
            RouteEdge(to="orders", kind="conditional", when="orders"),
            RouteEdge(to="general", kind="next"),
        ],
        outcomes=["billing", "orders"],
    )
    assert [e.to for e in choose_edges(n, "orders", 1).edges] == ["orders"]
    assert [e.to for e in choose_edges(n, None, 1).edges] == ["general"]
    assert [e.to for e in choose_edges(n, "other", 1).edges] == ["general"]


def test_loop_exits_on_exit_when_and_on_max_iterations() -> None:
    critic = node(
        "critic",
        [RouteEdge(to="drafter", kind="loop")],
        exit_when="approved",
        max_iterations=3,
        outcomes=["approved", "revise"],
    )
    again = choose_edges(critic, "revise", 1)
    assert [e.to for e in again.edges] == ["drafter"] and again.loop_exit is None
    done = choose_edges(critic, "approved", 2)
    assert done.ends_task and done.loop_exit == "exit_when"
    capped = choose_edges(critic, "revise", 3)
    assert capped.ends_task and capped.loop_exit == "max_iterations"


def test_loop_exit_follows_the_non_loop_edges() -> None:
    critic = node(
        "critic",
        [RouteEdge(to="drafter", kind="loop"), RouteEdge(to="publisher", kind="next")],
        exit_when="approved",
        max_iterations=2,
    )
    assert [e.to for e in choose_edges(critic, "approved", 1).edges] == ["publisher"]
    assert [e.to for e in choose_edges(critic, None, 2).edges] == ["publisher"]


def test_delegate_edges_are_not_routed() -> None:
    sup = node("sup", [RouteEdge(to="w1", kind="delegate"), RouteEdge(to="w2", kind="delegate")])
    assert choose_edges(sup, None, 1).ends_task


def test_fan_out_gives_each_branch_a_ticket_and_ids_are_deterministic() -> None:
    table = RoutingTable(
        system="sys",
        entry=["r"],
        nodes={
            "r": node("r", [RouteEdge(to="a", kind="fan_out"), RouteEdge(to="b", kind="fan_out")]),
            "a": node("a", [RouteEdge(to="j", kind="next")]),
            "b": node("b", [RouteEdge(to="j", kind="next")]),
            "j": node("j", [], join=JoinRule(inputs=["a", "b"])),
        },
    )
    parent = step("r", "r-1")
    out = StepOutput(agent="r", step_id="r-1", output="o")
    route = choose_edges(table.nodes["r"], None, 1)
    children = next_steps(table, parent, out, route, model_calls={"r": 1})
    assert [c.agent for c in children] == ["a", "b"]
    assert all(
        c.join == JoinTicket(join_id="r-1", branches=2, branch=c.agent, join_agent="j")
        and c.join_stack == [c.join]
        for c in children
    )
    rerun = next_steps(table, parent, out, route, model_calls={"r": 1})
    assert [c.step_id for c in rerun] == [c.step_id for c in children]
    assert len({c.step_id for c in children}) == 2
    assert children[0].iterations == {"r": 1}
    # a branch passes its ticket on to the join
    a_out = StepOutput(agent="a", step_id=children[0].step_id, output="A")
    to_join = next_steps(
        table, children[0], a_out, choose_edges(table.nodes["a"], None, 1), model_calls={}
    )
    assert to_join[0].join == children[0].join
    b_step = next_steps(
        table,
        children[1],
        StepOutput(agent="b", step_id=children[1].step_id, output="B"),
        choose_edges(table.nodes["b"], None, 1),
        model_calls={"b": 2},
    )[0]
    key = join_key(table.nodes["j"], to_join[0])
    assert key.branches == 2 and key.join_id == "r-1"
    merged = merged_step(table.nodes["j"], key, [b_step, to_join[0]])
    assert [u.output for u in merged.upstream] == ["A", "B"]
    assert merged.join is None and merged.model_calls == {"b": 2}
    again = merged_step(table.nodes["j"], key, [to_join[0], b_step])
    assert again.step_id == merged.step_id


def test_visits_and_entry_steps() -> None:
    assert visits_of(step("a", iterations={"a": 2})) == 3
    table = RoutingTable(system="sys", entry=["a", "b"], nodes={})
    steps = entry_steps(table, task_id="t1", task_input="x", deadline=None)
    assert [s.agent for s in steps] == ["a", "b"]
    assert all(s.join is not None and s.join.branches == 2 for s in steps)
    rerun = entry_steps(table, task_id="t1", task_input="x", deadline=None)
    assert [s.step_id for s in rerun] == [s.step_id for s in steps]
