"""The graph of an `AgentSystem` as typed edges: shared by validation and the routing compiler.

Kinds: `next` (one unconditional successor), `fan_out` (several, in parallel), `conditional`
(edges chosen by the agent's outcome; an edge without `when` is the default), `delegate`
(supervisor -> worker, the result returns to the supervisor) and `loop` (an edge of a node with
`exit_when`/`max_iterations` that goes back into its own cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from manifests.errors import suggest
from manifests.models import AgentSystemSpec, GraphNode

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    to: str
    kind: str
    when: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    message: str


@dataclass(slots=True)
class Graph:
    """Edges in declaration order, joins, entries and the problems found on the way."""

    nodes: list[str]
    edges: list[Edge] = field(default_factory=list)
    joins: dict[str, list[str]] = field(default_factory=dict)
    implicit_joins: set[str] = field(default_factory=set)
    """Joins no `join:` asked for: a node with several inputs waits for the branches of a
    fan-out that meet there, as in Orloj (any node with more than one incoming edge)."""
    entry: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def out(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.source == node]


def analyse(spec: AgentSystemSpec) -> Graph:
    members = list(dict.fromkeys(spec.agents))
    graph = Graph(nodes=members)
    problems = graph.problems
    for index, agent in enumerate(spec.agents):
        if agent in spec.agents[:index]:
            problems.append(Problem(("spec", "agents", index), f"agent {agent!r} is listed twice"))
    known = set(members)

    def target(name: str, path: Path) -> bool:
        if name in known:
            return True
        problems.append(
            Problem(path, f"{name!r} is not one of the system's agents{suggest(name, known)}")
        )
        return False

    raw: list[Edge] = []
    for source, node in spec.graph.items():
        base: Path = ("spec", "graph", source)
        if source not in known:
            problems.append(
                Problem(
                    base,
                    f"graph node {source!r} is not listed in spec.agents{suggest(source, known)}",
                )
            )
            continue
        raw.extend(_node_edges(source, node, base, target, problems))

    # `join: e` next to `fan_out`: every branch continues to e, which joins them.
    for source, node in spec.graph.items():
        join = node.join_target
        if join is None or source not in known:
            continue
        path: Path = ("spec", "graph", source, "join")
        if not node.fan_out:
            problems.append(Problem(path, "`join` needs `fan_out` on the same node"))
            continue
        if not target(join, path):
            continue
        branches = [b for b in dict.fromkeys(node.fan_out) if b in known]
        if len(branches) < 2:
            problems.append(
                Problem(path, f"join {join!r} has {len(branches)} input; a join needs at least 2")
            )
        # The shorthand sends every branch agent straight to the join; a branch that routes on
        # by itself (a longer or nested branch) would then go two ways at once, so say how to
        # write it instead of compiling a graph nobody meant.
        routed = [b for b in branches if b in spec.graph and _has_routes(spec.graph[b])]
        if routed:
            problems.append(
                Problem(
                    path,
                    f"branch {routed[0]!r} of this fan_out has edges of its own, so `join: "
                    f"{join}` here would also send it straight to {join!r}; for branches longer "
                    f"than one agent, give {join!r} `join: {{mode: wait_for_all}}` and end each "
                    f"branch with `next: {join}`",
                )
            )
            continue
        graph.joins[join] = _merge(graph.joins.get(join, []), branches)
        raw.extend(Edge(b, join, "next") for b in branches)

    edges = _dedupe(raw)
    # Receivers marked `join: {mode: wait_for_all}` (or `join: true`) join their incoming edges.
    for name, node in spec.graph.items():
        if name not in known or not node.is_join:
            continue
        inputs = [e.source for e in edges if e.to == name and e.kind != "delegate"]
        inputs = list(dict.fromkeys(inputs))
        if len(inputs) < 2:
            problems.append(
                Problem(
                    ("spec", "graph", name, "join"),
                    f"join node {name!r} has {len(inputs)} input; a join needs at least 2",
                )
            )
        graph.joins[name] = _merge(graph.joins.get(name, []), inputs)

    edges = _mark_loops(spec, members, edges, problems)
    for name in members:
        if name in graph.joins:
            continue
        inputs = list(
            dict.fromkeys(
                e.source
                for e in edges
                if e.to == name and e.kind != "delegate" and e.kind != "loop"
            )
        )
        if len(inputs) > 1:
            graph.joins[name] = inputs
            graph.implicit_joins.add(name)
    graph.edges = edges
    incoming = {e.to for e in edges if e.kind != "loop"}
    graph.entry = [a for a in members if a not in incoming]
    if members and not graph.entry and not problems:
        problems.append(
            Problem(("spec", "graph"), "the graph has no entry agent (every agent has an input)")
        )
    return graph


def _node_edges(
    source: str,
    node: GraphNode,
    base: Path,
    target: object,
    problems: list[Problem],
) -> list[Edge]:
    check = target  # callable(name, path) -> bool
    assert callable(check)
    plain: list[tuple[str, str | None, Path]] = []
    if node.next is not None:
        plain.append((node.next, None, (*base, "next")))
    for i, edge in enumerate(node.edges):
        plain.append((edge.to, edge.when, (*base, "edges", i, "to")))
    plain = [p for p in plain if check(p[0], p[2])]
    out: list[Edge] = []
    conditional = any(when is not None for _, when, _ in plain)
    if conditional:
        defaults = [p for p in plain if p[1] is None]
        if len(defaults) > 1:
            problems.append(
                Problem(
                    (*base, "edges"),
                    "conditional edges may have one default (an edge without `when`), "
                    f"found {len(defaults)}",
                )
            )
        labels = [when for _, when, _ in plain if when is not None]
        for label in sorted({w for w in labels if labels.count(w) > 1}):
            problems.append(Problem((*base, "edges"), f"outcome {label!r} selects two edges"))
        out.extend(Edge(source, to, "conditional", when) for to, when, _ in plain)
    else:
        kind = "next" if len({to for to, _, _ in plain}) <= 1 else "fan_out"
        out.extend(Edge(source, to, kind) for to, _, _ in plain)
    for i, name in enumerate(node.fan_out):
        if check(name, (*base, "fan_out", i)):
            out.append(Edge(source, name, "fan_out"))
    for i, name in enumerate(node.delegates_to):
        if name == source:
            problems.append(
                Problem((*base, "delegates_to", i), "an agent cannot delegate to itself")
            )
        elif check(name, (*base, "delegates_to", i)):
            out.append(Edge(source, name, "delegate"))
    return out


def _merge(first: list[str], second: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def _dedupe(edges: Sequence[Edge]) -> list[Edge]:
    return list(dict.fromkeys(edges))


def _mark_loops(
    spec: AgentSystemSpec, members: list[str], edges: list[Edge], problems: list[Problem]
) -> list[Edge]:
    """Edges of loop-controlling nodes back into their own cycle become `loop` edges; any cycle
    left without such an edge is an error (it would never end)."""
    flow = [e for e in edges if e.kind != "delegate"]
    component = _components(members, flow)
    controls = {
        name
        for name, node in spec.graph.items()
        if node.exit_when is not None or node.max_iterations is not None
    }
    marked: list[Edge] = []
    for e in edges:
        if (
            e.kind != "delegate"
            and e.source in controls
            and component.get(e.source) == component.get(e.to)
            and (e.source == e.to or _cyclic(component, e.source))
        ):
            marked.append(Edge(e.source, e.to, "loop", e.when))
        else:
            marked.append(e)
    for name in sorted(controls):
        if name in component and not _cyclic(component, name):
            field_name = "exit_when" if spec.graph[name].exit_when is not None else "max_iterations"
            problems.append(
                Problem(
                    ("spec", "graph", name, field_name),
                    f"`{field_name}` is set on {name!r}, which is not part of a loop",
                )
            )
    remaining = [e for e in marked if e.kind not in ("delegate", "loop")]
    cycle = _find_cycle(members, remaining)
    if cycle:
        problems.append(
            Problem(
                ("spec", "graph", cycle[0]),
                f"cycle {' -> '.join([*cycle, cycle[0]])} has neither `exit_when` nor "
                "`max_iterations`; set them on the node that closes the loop",
            )
        )
    return marked


def _components(nodes: list[str], edges: list[Edge]) -> dict[str, int]:
    """Strongly connected components (Tarjan, iterative); a self-loop counts as a cycle."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        if e.source in succ and e.to in succ:
            succ[e.source].append(e.to)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comp: dict[str, int] = {}
    sizes: dict[int, int] = {}
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(succ[node])):
                nxt = succ[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                cid = len(sizes)
                size = 0
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp[member] = cid
                    size += 1
                    if member == node:
                        break
                sizes[cid] = size
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    selfloops = {e.source for e in edges if e.source == e.to}
    # Encode "is cyclic" in the component id's sign: negative ids are cyclic components.
    return {n: (-(c + 1) if sizes[c] > 1 or n in selfloops else c + 1) for n, c in comp.items()}


def _cyclic(component: dict[str, int], node: str) -> bool:
    return component.get(node, 0) < 0


def _find_cycle(nodes: list[str], edges: list[Edge]) -> list[str]:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        if e.source in succ and e.to in succ:
            succ[e.source].append(e.to)
    color: dict[str, int] = dict.fromkeys(nodes, 0)
    for root in nodes:
        if color[root]:
            continue
        path: list[str] = []
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                color[node] = 1
                path.append(node)
            if i < len(succ[node]):
                work.append((node, i + 1))
                nxt = succ[node][i]
                if color[nxt] == 1:
                    return path[path.index(nxt) :]
                if color[nxt] == 0:
                    work.append((nxt, 0))
            else:
                color[node] = 2
                path.pop()
    return []


def _has_routes(node: GraphNode) -> bool:
    """Whether a graph node sends its output on by itself (delegation does not route)."""
    return bool(node.next or node.edges or node.fan_out)
