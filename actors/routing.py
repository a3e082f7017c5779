"""What a finished step sends next: pure functions over a compiled `RoutingTable`.

No Kafka here. Step ids are deterministic (a re-run of a step produces the same ids), so a
transition can be recognised as the same one wherever it is replayed.

Rules:
- the node's visit count (`Step.iterations[agent]`, this run included) and its outcome decide
  whether a loop exits: `exit_when` matched (`loop_exit="exit_when"`) or `max_iterations`
  reached (`loop_exit="max_iterations"`); an exiting node follows only its non-loop edges;
- `delegate` edges are never followed by routing (the supervisor's model delegates by tool);
- when any candidate edge has a `when`, the edges whose `when` equals the outcome are taken,
  or, when none match, the edges without `when` (the default); otherwise every candidate is taken;
- no edge taken: the task ends with this step's output;
- several targets: each gets a `JoinTicket` naming this step, pushed on the step's join stack, so
  a join can count them; a single target inherits the stack of a branch still on its way to its
  join. A join counts arrivals by the ticket on top of the stack and pops it, so a fan-out inside
  a branch joins first and the outer join after it;
- usage (tokens, cost) is carried along the path; a join adds what each branch spent after the
  fan-out to the usage at the fan-out (the ticket's `base_usage`), so nothing is counted twice.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from topics.messages import JoinTicket, PathUsage, Step, StepOutput, TaskInput
from topics.routing import RouteEdge, RouteNode, RoutingTable


def step_digest(*parts: str) -> str:
    """A short, deterministic digest of the parts of a step id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def entry_step_id(task_id: str, agent: str, index: int) -> str:
    return f"{agent}-{step_digest(task_id, 'entry', agent, str(index))}"


def child_step_id(parent_step_id: str, agent: str, index: int) -> str:
    return f"{agent}-{step_digest(parent_step_id, agent, str(index))}"


def join_step_id(join_id: str, agent: str) -> str:
    return f"{agent}-{step_digest(join_id, 'join', agent)}"


def delegated_step_id(supervisor_step_id: str, tool_call_id: str, worker: str) -> str:
    return f"{worker}-{step_digest(supervisor_step_id, 'delegate', tool_call_id, worker)}"


def resumed_step_id(agent: str, parked_step_id: str, reason: str, token: str) -> str:
    """The id of a parked step's continuation (after a delegation or an approval)."""
    return f"{agent}-{step_digest(parked_step_id, 'resume', reason, token)}"


@dataclass(frozen=True, slots=True)
class Route:
    """The edges a finished step follows, and whether it ended a loop."""

    edges: tuple[RouteEdge, ...]
    loop_exit: str | None = None

    @property
    def ends_task(self) -> bool:
        return not self.edges


def choose_edges(node: RouteNode, outcome: str | None, visits: int) -> Route:
    """The edges a node follows after its `visits`-th run returned `outcome`."""
    loop_exit: str | None = None
    if node.exit_when is not None and outcome == node.exit_when:
        loop_exit = "exit_when"
    elif node.max_iterations is not None and visits >= node.max_iterations:
        loop_exit = "max_iterations"
    candidates = [e for e in node.edges if e.kind != "delegate"]
    if loop_exit is not None:
        candidates = [e for e in candidates if e.kind != "loop"]
        if node.exit_when is not None:
            # An edge guarded by the exit outcome is the way out; other guarded edges are not.
            candidates = [e for e in candidates if e.when in (None, node.exit_when)]
    if any(e.when is not None for e in candidates):
        matched = [e for e in candidates if e.when is not None and e.when == outcome]
        if not matched and loop_exit == "max_iterations":
            matched = [e for e in candidates if e.when == node.exit_when and e.when is not None]
        chosen = matched or [e for e in candidates if e.when is None]
    else:
        chosen = candidates
    # A loop that exits only counts as an exit when the node is a loop at all.
    is_loop = any(e.kind == "loop" for e in node.edges) or node.exit_when is not None
    return Route(edges=tuple(chosen), loop_exit=loop_exit if is_loop else None)


def visits_of(step: Step) -> int:
    """This run's visit number of the step's agent on its path (1 for the first)."""
    return step.iterations.get(step.agent, 0) + 1


def allowed_outcome(node: RouteNode | None, outcome: str | None) -> str | None:
    """The outcome if the node knows it; anything else counts as no outcome (the default)."""
    if node is None or outcome is None:
        return None
    return outcome if outcome in node.outcomes or outcome == node.exit_when else None


def join_stack_of(step: Step) -> list[JoinTicket]:
    """The fan-outs `step` is a branch of, outermost first (older writers set `join` only)."""
    if step.join_stack:
        return list(step.join_stack)
    return [step.join] if step.join is not None else []


def join_target(table: RoutingTable, targets: Sequence[str]) -> str:
    """The join node where the branches starting at `targets` meet: the nearest join reachable
    from every branch (by the longest of their distances). Empty when there is none."""
    distances: list[dict[str, int]] = []
    for start in targets:
        seen = {start: 0}
        queue = deque([start])
        while queue:
            name = queue.popleft()
            node = table.nodes.get(name)
            for edge in node.edges if node else []:
                if edge.kind in ("delegate", "loop") or edge.to in seen:
                    continue
                seen[edge.to] = seen[name] + 1
                queue.append(edge.to)
        distances.append(seen)
    common = [
        name
        for name, node in table.nodes.items()
        if node.join is not None and all(name in d for d in distances)
    ]
    if not common:
        return ""
    return min(common, key=lambda name: (max(d[name] for d in distances), name))


def next_steps(
    table: RoutingTable,
    step: Step,
    output: StepOutput,
    route: Route,
    *,
    model_calls: dict[str, int],
    usage: PathUsage | None = None,
) -> list[Step]:
    """The steps that follow `step` along `route`, with deterministic ids. `usage` is the
    path's usage including `step`'s own calls."""
    iterations = {**step.iterations, step.agent: visits_of(step)}
    path_usage = usage if usage is not None else step.usage
    stack = join_stack_of(step)  # a join's merged step has already popped its own ticket
    targets = [edge.to for edge in route.edges]
    join_agent = join_target(table, targets) if len(targets) > 1 else ""
    steps: list[Step] = []
    for index, target in enumerate(targets):
        if len(targets) > 1:
            branch_stack = [
                *stack,
                JoinTicket(
                    join_id=step.step_id,
                    branches=len(targets),
                    branch=target,
                    join_agent=join_agent,
                    base_usage=path_usage,
                ),
            ]
        else:
            branch_stack = stack
        steps.append(
            Step(
                task_id=step.task_id,
                system=step.system,
                agent=target,
                step_id=child_step_id(step.step_id, target, index),
                task_input=step.task_input,
                upstream=[output],
                iterations=iterations,
                model_calls=model_calls,
                join=branch_stack[-1] if branch_stack else None,
                deadline=step.deadline,
                usage=path_usage,
                join_stack=branch_stack,
            )
        )
    return steps


def entry_steps(
    table: RoutingTable,
    *,
    task_id: str,
    task_input: TaskInput,
    deadline: datetime | None,
) -> list[Step]:
    """The first step(s) of a task; several entries that meet at a join share one ticket."""
    entries = list(table.entry)
    join_agent = join_target(table, entries) if len(entries) > 1 else ""
    steps = []
    for index, agent in enumerate(entries):
        ticket = (
            JoinTicket(
                join_id=f"{task_id}:entry",
                branches=len(entries),
                branch=agent,
                join_agent=join_agent,
            )
            if len(entries) > 1
            else None
        )
        steps.append(
            Step(
                task_id=task_id,
                system=table.system,
                agent=agent,
                step_id=entry_step_id(task_id, agent, index),
                task_input=task_input,
                join=ticket,
                deadline=deadline,
                join_stack=[ticket] if ticket is not None else [],
            )
        )
    return steps


def waits_at_join(node: RouteNode, step: Step) -> bool:
    """Whether `step` is counted at `node`'s join before the node runs. An implicit join counts
    only the branches of a fan-out whose join it is; on a single path (an edge chosen by a
    condition, a branch of a fan-out that joins elsewhere) the step runs at once."""
    if node.join is None:
        return False
    if not node.join.implicit:
        return True
    stack = join_stack_of(step)
    return bool(stack) and stack[-1].join_agent == node.agent


@dataclass(frozen=True, slots=True)
class JoinKey:
    """How a step that reaches a join node is counted: which join, which branch, how many."""

    join_id: str
    branch: str
    branches: int


def join_key(node: RouteNode, step: Step) -> JoinKey:
    stack = join_stack_of(step)
    if stack:
        top = stack[-1]
        return JoinKey(top.join_id, top.branch, top.branches)
    inputs = node.join.inputs if node.join is not None else []
    branch = step.upstream[0].agent if step.upstream else step.step_id
    return JoinKey(f"{step.task_id}:{step.agent}", branch, max(1, len(inputs)))


def merged_usage(arrivals: Sequence[Step]) -> PathUsage:
    """The usage after a join: the usage at the fan-out once, plus what each branch spent."""
    stacks = [join_stack_of(s) for s in arrivals]
    tickets = [stack[-1] for stack in stacks if stack]
    if len(tickets) != len(arrivals):
        # No ticket (an older writer): nothing tells what the branches share.
        total = PathUsage()
        for s in arrivals:
            total = total + s.usage
        return total
    base = tickets[0].base_usage
    total = base
    for s in arrivals:
        total = total + (s.usage - base)
    return total


def merged_step(node: RouteNode, key: JoinKey, arrivals: list[Step]) -> Step:
    """The single step a join runs once every branch has arrived: all their outputs, the join
    stack without the ticket it counted, and the usage of every branch."""
    order = {name: i for i, name in enumerate(node.join.inputs if node.join else [])}

    def rank(s: Step) -> tuple[int, str]:
        stack = join_stack_of(s)
        branch = stack[-1].branch if stack else ""
        via = s.upstream[0].agent if s.upstream else ""
        return (order.get(branch, order.get(via, len(order))), s.step_id)

    ordered = sorted(arrivals, key=rank)
    first = ordered[0]
    upstream = [out for s in ordered for out in s.upstream]
    iterations: dict[str, int] = {}
    model_calls: dict[str, int] = {}
    for s in ordered:
        for name, count in s.iterations.items():
            iterations[name] = max(iterations.get(name, 0), count)
        for name, count in s.model_calls.items():
            model_calls[name] = max(model_calls.get(name, 0), count)
    outer = join_stack_of(first)[:-1]
    return Step(
        task_id=first.task_id,
        system=first.system,
        agent=first.agent,
        step_id=join_step_id(key.join_id, first.agent),
        task_input=first.task_input,
        upstream=upstream,
        iterations=iterations,
        model_calls=model_calls,
        join=outer[-1] if outer else None,
        deadline=first.deadline,
        usage=merged_usage(ordered),
        join_stack=outer,
    )
