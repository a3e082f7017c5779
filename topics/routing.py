"""Routing tables: a system's graph compiled into what each actor follows.

The compiler turns an `AgentSystem` into one `RoutingTable`; actors read the tables (published
on `podium.manifests` as `RoutingTable/<system>`) and never look at the graph YAML themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from msgspec import Struct

from topics.names import TopicNames

if TYPE_CHECKING:
    from manifests.models import AgentSystem

LOOP_CONTINUE = "continue"
"""The outcome a loop node returns to go round again (any outcome but `exit_when` does)."""

EdgeKind = Literal["next", "fan_out", "delegate", "loop", "conditional"]


class RouteEdge(Struct, frozen=True, kw_only=True):
    """An out-edge of a node. `when` is the outcome that selects it (conditional and loop edges)."""

    to: str
    kind: EdgeKind
    when: str | None = None


class JoinRule(Struct, frozen=True, kw_only=True):
    """The node runs once, when every input has arrived, with all their outputs."""

    inputs: list[str]


class RouteNode(Struct, frozen=True, kw_only=True):
    agent: str
    topic: str
    group: str
    edges: list[RouteEdge] = []
    join: JoinRule | None = None
    max_iterations: int | None = None
    exit_when: str | None = None
    outcomes: list[str] = []
    """Outcome labels the agent must choose from (from `when` and `exit_when`); empty: none."""


class RoutingTable(Struct, frozen=True, kw_only=True):
    system: str
    entry: list[str]
    nodes: dict[str, RouteNode]


# --- the compiler ---------------------------------------------------------------------------------


def compile_system(system: AgentSystem, names: TopicNames | None = None) -> RoutingTable:
    """Compile one validated `AgentSystem` into its routing table (deterministic).

    Raises `ValueError` listing the graph's problems if the system was not validated.
    """
    from manifests._graph import analyse

    names = names or TopicNames()
    graph = analyse(system.spec)
    if graph.problems:
        raise ValueError(
            f"AgentSystem/{system.metadata.name}: " + "; ".join(p.message for p in graph.problems)
        )
    nodes: dict[str, RouteNode] = {}
    for agent in graph.nodes:
        spec_node = system.spec.graph.get(agent)
        edges = [RouteEdge(to=e.to, kind=e.kind, when=e.when) for e in graph.out(agent)]  # type: ignore[arg-type]
        exit_when = spec_node.exit_when if spec_node is not None else None
        labels = {e.when for e in edges if e.when is not None}
        if exit_when is not None:
            labels.add(exit_when)
            if any(e.kind == "loop" and e.when is None for e in edges):
                # The model needs a label for "go round again", not only the exit.
                labels.add(LOOP_CONTINUE)
        outcomes = sorted(labels)
        inputs = graph.joins.get(agent)
        nodes[agent] = RouteNode(
            agent=agent,
            topic=names.agent(agent),
            group=names.actor_group(agent),
            edges=edges,
            join=JoinRule(inputs=list(inputs)) if inputs else None,
            max_iterations=spec_node.max_iterations if spec_node is not None else None,
            exit_when=exit_when,
            outcomes=outcomes,
        )
    return RoutingTable(system=system.metadata.name, entry=list(graph.entry), nodes=nodes)


def compile_all(
    systems: Iterable[AgentSystem], names: TopicNames | None = None
) -> dict[str, RoutingTable]:
    """Routing tables of every system, by system name (sorted)."""
    tables = {s.metadata.name: compile_system(s, names) for s in systems}
    return dict(sorted(tables.items()))
