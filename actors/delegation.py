"""Supervisor delegation: the `delegate` tool offered to a supervisor's model, and the hand-offs.

A `delegate(agent, instruction)` call parks the supervisor: the worker gets a `Step` carrying a
`Delegation` (the supervisor's conversation), and when the worker finishes, its transaction sends
a `Step` back to the supervisor whose `resume` (a `DelegationResume`) holds that conversation and
the tool result. One
delegation is in flight per supervisor step at a time; several `delegate` calls in one model turn
run one after the other (the remaining calls travel in the parked conversation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from actors.providers.base import ToolCall, ToolSpec
from actors.routing import delegated_step_id, join_stack_of, resumed_step_id
from topics.messages import (
    Delegation,
    DelegationResume,
    JoinTicket,
    PathUsage,
    Step,
    StepOutput,
    ToolAnswer,
)

DELEGATE_TOOL = "delegate"


def delegate_tool_spec(workers: Sequence[str]) -> ToolSpec:
    return ToolSpec(
        name=DELEGATE_TOOL,
        description="Hand a piece of work to one of your workers; their answer comes back as "
        "this tool's result.",
        parameters={
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": list(workers)},
                "instruction": {"type": "string", "description": "What the worker must do."},
            },
            "required": ["agent", "instruction"],
            "additionalProperties": False,
        },
    )


def parse_delegation(call: ToolCall, workers: Sequence[str]) -> tuple[str, str, str | None]:
    """(worker, instruction, problem): `problem` is a message for the model when invalid."""
    agent = call.arguments.get("agent")
    instruction = call.arguments.get("instruction", "")
    if not isinstance(agent, str) or agent not in workers:
        return "", "", f"error: agent must be one of {', '.join(workers)}; got {agent!r}"
    if not isinstance(instruction, str):
        return "", "", "error: instruction must be a string"
    return agent, instruction, None


def worker_step(
    parked: Step,
    *,
    worker: str,
    instruction: str,
    tool_call_id: str,
    conversation: dict[str, Any],
    model_calls: dict[str, int],
    usage: PathUsage | None = None,
) -> Step:
    """The step a supervisor's `delegate` call sends to the worker. `usage` is the path's usage
    with the supervisor's calls so far; the worker adds its own and carries it back."""
    return Step(
        task_id=parked.task_id,
        system=parked.system,
        agent=worker,
        step_id=delegated_step_id(parked.step_id, tool_call_id, worker),
        task_input=parked.task_input,
        upstream=[],
        iterations={**parked.iterations},
        model_calls=model_calls,
        delegation=Delegation(
            supervisor=parked.agent,
            supervisor_step_id=parked.step_id,
            tool_call_id=tool_call_id,
            state={
                "conversation": conversation,
                "upstream": [
                    {
                        "agent": u.agent,
                        "step_id": u.step_id,
                        "output": u.output,
                        "outcome": u.outcome,
                    }
                    for u in parked.upstream
                ],
                "join": msgspec.to_builtins(parked.join) if parked.join else None,
                "join_stack": msgspec.to_builtins(join_stack_of(parked)),
                "iterations": dict(parked.iterations),
            },
        ),
        instruction=instruction,
        deadline=parked.deadline,
        usage=usage if usage is not None else parked.usage,
    )


def supervisor_stack(worker: Step) -> list[JoinTicket]:
    """The join stack of the supervisor a delegated worker answers (kept in the parked state)."""
    if worker.delegation is None:
        return []
    state = worker.delegation.state
    raw = state.get("join_stack")
    if not isinstance(raw, list) or not raw:
        join = state.get("join")
        raw = [join] if isinstance(join, dict) else []
    try:
        return msgspec.convert(raw, list[JoinTicket])
    except msgspec.ValidationError:
        return []


def return_step(
    worker: Step,
    output: StepOutput,
    *,
    model_calls: dict[str, int],
    usage: PathUsage | None = None,
) -> Step:
    """The step a finished worker sends back to its supervisor: the conversation and the result.
    `usage` is the path's usage with the worker's calls."""
    delegation = worker.delegation
    assert delegation is not None
    state = delegation.state
    upstream = [
        StepOutput(
            agent=str(u.get("agent", "")),
            step_id=str(u.get("step_id", "")),
            output=str(u.get("output", "")),
            outcome=u.get("outcome"),
        )
        for u in state.get("upstream", [])
        if isinstance(u, dict)
    ]
    iterations = state.get("iterations")
    conversation = state.get("conversation")
    stack = supervisor_stack(worker)
    return Step(
        task_id=worker.task_id,
        system=worker.system,
        agent=delegation.supervisor,
        step_id=resumed_step_id(
            delegation.supervisor,
            delegation.supervisor_step_id,
            "delegation",
            delegation.tool_call_id,
        ),
        task_input=worker.task_input,
        upstream=upstream,
        iterations=dict(iterations) if isinstance(iterations, dict) else dict(worker.iterations),
        model_calls=model_calls,
        join=stack[-1] if stack else None,
        resume=DelegationResume(
            conversation=conversation if isinstance(conversation, dict) else {},
            tool_result=ToolAnswer(
                tool_call_id=delegation.tool_call_id,
                name=DELEGATE_TOOL,
                content=f"{worker.agent} answered:\n{output.output}",
            ),
        ),
        deadline=worker.deadline,
        usage=usage if usage is not None else worker.usage,
        join_stack=stack,
    )
