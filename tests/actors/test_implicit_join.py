"""Which steps an implicit join counts (`actors.routing.waits_at_join`): pure, no Kafka."""

from __future__ import annotations

from actors.routing import waits_at_join
from topics.messages import JoinTicket, Step
from topics.routing import JoinRule, RouteNode


def node(implicit: bool) -> RouteNode:
    return RouteNode(
        agent="d",
        topic="p.agent.d",
        group="p.actor.d",
        join=JoinRule(inputs=["b", "c"], implicit=implicit),
    )


def step(*tickets: JoinTicket) -> Step:
    return Step(
        task_id="t",
        system="s",
        agent="d",
        step_id="t/d",
        task_input="go",
        join=tickets[-1] if tickets else None,
        join_stack=list(tickets),
    )


def ticket(join_agent: str) -> JoinTicket:
    return JoinTicket(join_id="t/a", branches=2, branch="b", join_agent=join_agent)


def test_an_explicit_join_counts_every_arrival() -> None:
    assert waits_at_join(node(implicit=False), step())
    assert waits_at_join(node(implicit=False), step(ticket("elsewhere")))


def test_an_implicit_join_counts_the_branches_of_its_own_fan_out() -> None:
    assert waits_at_join(node(implicit=True), step(ticket("d")))


def test_an_implicit_join_lets_a_single_path_through() -> None:
    assert not waits_at_join(node(implicit=True), step())
    assert not waits_at_join(node(implicit=True), step(ticket("elsewhere")))


def test_a_node_without_join_never_waits() -> None:
    plain = RouteNode(agent="d", topic="p.agent.d", group="p.actor.d")
    assert not waits_at_join(plain, step(ticket("d")))
