"""The step transition: what a step's result sends next, as a pure function (no Kafka, no I/O).

`transition(step, result, node=..., table=..., usage=..., now=...)` returns the `Effect`s of the
step's transaction, in order; `actors.outbox.OutboxBuilder.apply` turns them into records:

- finished: the next steps along the chosen edges (fan-out with join tickets, conditional edges
  by outcome, loops with `max_iterations`/`exit_when`), `step.completed`, and the task's result
  when no edge is taken; a delegated worker's step returns to its supervisor instead;
- delegated: the worker's step and a `step.completed` that marks the supervisor as parked;
- awaiting approval: the approval request (carrying the parked step) and `approval.requested`;
- failed: the step's dead letter, `step.failed`, the task's failure, and a notice to every join
  the step was on its way to (so their waiting state is cleared).

The state a step carries forward (visit counts, model calls by agent, usage on the path, the
join stack, a parked conversation) travels in the `Step`s of the effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from actors.delegation import return_step, supervisor_stack, worker_step
from actors.results import AwaitingApproval, Delegated, Failed, Finished, LoopResult
from actors.routing import (
    allowed_outcome,
    choose_edges,
    join_stack_of,
    next_steps,
    step_digest,
    visits_of,
)
from actors.tools.redaction import redact_arguments
from topics.messages import (
    Action,
    ApprovalRequest,
    ApprovalRequestedData,
    ApprovalResume,
    AuthorizationRequest,
    PathUsage,
    Payload,
    Step,
    StepCompletedData,
    StepOutput,
)
from topics.routing import RouteNode, RoutingTable

DEFAULT_APPROVAL_TTL_S = 3600.0
"""Expiry of an approval whose decision does not say (a policy service that predates
`Decision.approval_expires_at`)."""


@dataclass(frozen=True, slots=True)
class SendStep:
    """Produce `step` on its agent's inbox."""

    step: Step


@dataclass(frozen=True, slots=True)
class EmitEvent:
    """An event of the step; `suffix` replaces the payload's type in its deterministic id."""

    payload: Payload
    suffix: str | None = None


@dataclass(frozen=True, slots=True)
class CompleteTask:
    """The task ends with `output`; `usage` is the whole path's, the step's calls included."""

    output: StepOutput
    usage: PathUsage


@dataclass(frozen=True, slots=True)
class FailStep:
    """The step failed for good: its dead letter, `step.failed` and the task's failure."""

    error: str
    usage: PathUsage


@dataclass(frozen=True, slots=True)
class RequestApproval:
    """Produce `request` on the approvals topic (the step parks in it)."""

    request: ApprovalRequest


Effect = SendStep | EmitEvent | CompleteTask | FailStep | RequestApproval


@dataclass(frozen=True, slots=True)
class Transition:
    """The effects of a step's transaction, in the order they are produced."""

    effects: tuple[Effect, ...]

    @property
    def steps(self) -> list[Step]:
        return [e.step for e in self.effects if isinstance(e, SendStep)]

    @property
    def events(self) -> list[Payload]:
        return [e.payload for e in self.effects if isinstance(e, EmitEvent)]

    @property
    def completes_task(self) -> CompleteTask | None:
        return next((e for e in self.effects if isinstance(e, CompleteTask)), None)

    @property
    def failure(self) -> FailStep | None:
        return next((e for e in self.effects if isinstance(e, FailStep)), None)


def failure(step: Step, error: str, usage: PathUsage) -> Transition:
    """The step failed for good; `usage` is the path's usage up to the failure."""
    notices = [SendStep(notice) for notice in abandoned_notices(step, error)]
    return Transition((FailStep(error=error, usage=usage), *notices))


def abandoned_notices(step: Step, error: str) -> list[Step]:
    """The notices a failed step sends to the joins it was on its way to, innermost last."""
    stack = join_stack_of(step) or supervisor_stack(step)
    notices: list[Step] = []
    for depth, ticket in enumerate(stack):
        if not ticket.join_agent:
            continue  # an older writer's ticket: the join is unknown
        notices.append(
            Step(
                task_id=step.task_id,
                system=step.system,
                agent=ticket.join_agent,
                step_id=f"{ticket.join_agent}-"
                + step_digest(ticket.join_id, "abandoned", ticket.branch),
                task_input=step.task_input,
                iterations=dict(step.iterations),
                model_calls=dict(step.model_calls),
                join=ticket,
                deadline=step.deadline,
                usage=step.usage,
                join_stack=stack[: depth + 1],
                abandoned=error[:2000] or "failed",
            )
        )
    return notices


def transition(
    step: Step,
    result: LoopResult,
    *,
    node: RouteNode | None,
    table: RoutingTable | None,
    usage: PathUsage,
    now: datetime,
) -> Transition:
    """What `step` sends next after its agent loop returned `result`. `node` is the agent's
    node in the system's routing `table` (None when the agent is not on it); `usage` is the
    path's usage with this step's calls; `now` dates an approval request."""
    if isinstance(result, Failed):
        return failure(step, result.error, usage)
    model_calls = {**step.model_calls, step.agent: result.model_calls}
    if isinstance(result, Delegated):
        return _delegated(step, result, model_calls, usage)
    if isinstance(result, AwaitingApproval):
        return _awaiting_approval(step, result, model_calls, usage, now)
    return _finished(step, result, node, table, model_calls, usage)


def _finished(
    step: Step,
    result: Finished,
    node: RouteNode | None,
    table: RoutingTable | None,
    model_calls: dict[str, int],
    usage: PathUsage,
) -> Transition:
    outcome = allowed_outcome(node, result.outcome)
    output = StepOutput(
        agent=step.agent, step_id=step.step_id, output=result.output, outcome=outcome
    )

    def completed(next_agents: list[str], loop_exit: str | None) -> EmitEvent:
        return EmitEvent(
            StepCompletedData(
                output=output.output,
                outcome=output.outcome,
                next=next_agents,
                model_turns=result.turns,
                loop_exit=loop_exit,
            )
        )

    if step.delegation is not None:
        back = return_step(step, output, model_calls=model_calls, usage=usage)
        return Transition((SendStep(back), completed([back.agent], None)))
    if node is None or table is None:
        return Transition((completed([], None), CompleteTask(output=output, usage=usage)))
    route = choose_edges(node, outcome, visits_of(step))
    children = next_steps(table, step, output, route, model_calls=model_calls, usage=usage)
    effects: list[Effect] = [SendStep(child) for child in children]
    effects.append(completed([c.agent for c in children], route.loop_exit))
    if route.ends_task:
        effects.append(CompleteTask(output=output, usage=usage))
    return Transition(tuple(effects))


def _delegated(
    step: Step, result: Delegated, model_calls: dict[str, int], usage: PathUsage
) -> Transition:
    worker = worker_step(
        step,
        worker=result.worker,
        instruction=result.instruction,
        tool_call_id=result.tool_call_id,
        conversation=result.conversation,
        model_calls=model_calls,
        usage=usage,
    )
    parked = EmitEvent(
        StepCompletedData(output=f"(delegated to {worker.agent})", next=[worker.agent]),
        suffix=f"delegated:{worker.step_id}",
    )
    return Transition((SendStep(worker), parked))


def _awaiting_approval(
    step: Step,
    result: AwaitingApproval,
    model_calls: dict[str, int],
    usage: PathUsage,
    now: datetime,
) -> Transition:
    parked = msgspec.structs.replace(
        step,
        model_calls=model_calls,
        resume=ApprovalResume(conversation=result.conversation, tool_call_id=result.tool_call.id),
        usage=usage,
    )
    # The policy service decides the expiry (its approval TTL); it expires the approval.
    expires = result.decision.approval_expires_at or now + timedelta(seconds=DEFAULT_APPROVAL_TTL_S)
    arguments: dict[str, Any] = redact_arguments(result.tool_call.arguments)
    request = AuthorizationRequest(
        request_id=result.decision.request_id,
        task_id=step.task_id,
        system=step.system,
        agent=step.agent,
        step_id=step.step_id,
        action=Action.TOOL_CALL,
        tool=result.tool_call.name,
        reply_to="-",
        deadline=expires,
    )
    approval = ApprovalRequest(
        approval_id=result.approval_id,
        task_id=step.task_id,
        system=step.system,
        agent=step.agent,
        step=parked,
        request=request,
        arguments=arguments,
        reason=result.decision.reason,
        requested_at=now,
        expires_at=expires,
    )
    requested = EmitEvent(
        ApprovalRequestedData(
            approval_id=result.approval_id,
            action=str(Action.TOOL_CALL),
            tool=result.tool_call.name,
            arguments=arguments,
            reason=result.decision.reason,
            expires_at=expires,
        ),
        suffix=f"approval.requested:{result.approval_id}",
    )
    return Transition((RequestApproval(approval), requested))
