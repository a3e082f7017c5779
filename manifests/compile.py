"""The compiler: a validated `AgentSystem` becomes the `RoutingTable` its actors follow."""

from __future__ import annotations

from collections.abc import Iterable

from manifests._graph import analyse
from manifests.models import AgentSystem
from topics.names import TopicNames
from topics.routing import LOOP_CONTINUE, JoinRule, RouteEdge, RouteNode, RoutingTable


def compile_system(system: AgentSystem, names: TopicNames | None = None) -> RoutingTable:
    """Compile one validated `AgentSystem` into its routing table (deterministic).

    Raises `ValueError` listing the graph's problems if the system was not validated.
    """
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
            join=JoinRule(inputs=list(inputs), implicit=agent in graph.implicit_joins)
            if inputs
            else None,
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
