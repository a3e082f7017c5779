"""The join store and join stacks as pure functions: nested joins, failed branches, usage."""

from __future__ import annotations

from aiokafka import TopicPartition

from actors.joins import JoinStore
from actors.records import Outbox, PartitionContext
from actors.routing import Route, join_target, next_steps
from actors.transition import abandoned_notices
from topics.messages import PathUsage, Step, StepOutput
from topics.routing import JoinRule, RouteEdge, RouteNode, RoutingTable


def node(agent: str, to: list[str], join: list[str] | None = None) -> RouteNode:
    kind = "fan_out" if len(to) > 1 else "next"
    return RouteNode(
        agent=agent,
        topic=f"p.agent.{agent}",
        group=f"p.actor.{agent}",
        edges=[RouteEdge(to=t, kind=kind) for t in to],
        join=JoinRule(inputs=join) if join else None,
    )


# a -> fan_out [b, c] joined by d; b -> fan_out [b1, b2] joined by b3; b3 -> d.
TABLE = RoutingTable(
    system="sys",
    entry=["a"],
    nodes={
        "a": node("a", ["b", "c"]),
        "b": node("b", ["b1", "b2"]),
        "b1": node("b1", ["b3"]),
        "b2": node("b2", ["b3"]),
        "b3": node("b3", ["d"], join=["b1", "b2"]),
        "c": node("c", ["d"]),
        "d": node("d", [], join=["b3", "c"]),
    },
)
SPENT = PathUsage(tokens=10, cost_usd=0.5, priced_calls=1)


def ctx() -> PartitionContext:
    return PartitionContext(tp=TopicPartition("p.agent.x", 0))


def apply(context: PartitionContext, outbox: Outbox) -> None:
    for key, value in outbox.state.items():
        if value is None:
            context.state.pop(key, None)
        else:
            context.state[key] = value


def follow(step: Step, usage: PathUsage = SPENT) -> list[Step]:
    """The children of `step` after it spent `usage` on its own calls."""
    edges = tuple(TABLE.nodes[step.agent].edges)
    out = StepOutput(agent=step.agent, step_id=step.step_id, output=step.agent)
    return next_steps(
        TABLE, step, out, Route(edges=edges), model_calls={}, usage=step.usage + usage
    )


def arrive(store: JoinStore, context: PartitionContext, step: Step) -> Step | None:
    outbox = Outbox()
    merged = store.arrive(context.state, outbox.state, TABLE.nodes[step.agent], step)
    apply(context, outbox)
    return merged


def test_join_target_is_the_nearest_join_every_branch_reaches() -> None:
    assert join_target(TABLE, ["b", "c"]) == "d"
    assert join_target(TABLE, ["b1", "b2"]) == "b3"
    assert join_target(TABLE, ["c"]) == "d"
    assert join_target(TABLE, ["b1", "d"]) == "d"


def test_inner_fan_out_joins_first_then_the_outer_join_with_usage_counted_once() -> None:
    root = Step(task_id="t", system="sys", agent="a", step_id="a-0", task_input="x")
    b, c = follow(root)
    assert [t.join_agent for t in b.join_stack] == ["d"]
    b1, b2 = follow(b)
    assert [t.join_agent for t in b1.join_stack] == ["d", "b3"]
    assert b1.join == b1.join_stack[-1]
    inner, outer = JoinStore(), JoinStore()
    inner_ctx, outer_ctx = ctx(), ctx()
    (to_b3_1,) = follow(b1)
    (to_b3_2,) = follow(b2)
    assert arrive(inner, inner_ctx, to_b3_1) is None
    b3 = arrive(inner, inner_ctx, to_b3_2)
    assert b3 is not None and not inner_ctx.state
    assert [t.join_agent for t in b3.join_stack] == ["d"] and b3.join == b3.join_stack[0]
    assert b3.usage.tokens == 40  # a, b, b1, b2: the fan-out at b counted once
    (d_from_b,) = follow(b3)
    (d_from_c,) = follow(c)
    assert arrive(outer, outer_ctx, d_from_c) is None
    d = arrive(outer, outer_ctx, d_from_b)
    assert d is not None and not outer_ctx.state
    assert d.join_stack == [] and d.join is None
    assert [u.agent for u in d.upstream] == ["b3", "c"]
    # a, b, b1, b2, b3, c: six calls of 10 tokens, each priced once.
    assert d.usage == PathUsage(tokens=60, cost_usd=3.0, priced_calls=6)


def test_a_failed_branch_clears_the_join_in_either_order_and_the_join_never_runs() -> None:
    root = Step(task_id="t", system="sys", agent="a", step_id="a-0", task_input="x")
    b, _ = follow(root)
    b1, b2 = follow(b)
    notices = abandoned_notices(b2, "b2: max_steps exhausted")
    assert [(n.agent, n.join.branch if n.join else "") for n in notices] == [
        ("d", "b"),
        ("b3", "b2"),
    ]
    assert all(n.abandoned for n in notices)
    to_inner = notices[1]
    (late,) = follow(b1)
    # the branch first, then the notice
    store, context = JoinStore(), ctx()
    assert arrive(store, context, late) is None and context.state
    assert arrive(store, context, to_inner) is None and not context.state
    # the notice first, then the late branch: the join does not run either
    store, context = JoinStore(), ctx()
    assert arrive(store, context, to_inner) is None and context.state
    assert arrive(store, context, late) is None and not context.state
