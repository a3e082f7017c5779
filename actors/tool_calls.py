"""The tool calls of a step. Every call, `delegate` included, is authorized by the policy service
(it may allow, deny, or ask a person's approval, which parks the step) and recorded as
`tool.called` at call time with its idempotency key. An allowed tool runs; an allowed `delegate`
parks the step for its worker (`Delegated`); a denied call of either kind goes back to the model
as a refusal."""

from __future__ import annotations

import time
import uuid

from actors._step_run import StepRun, tool_message
from actors.conversation import Conversation
from actors.delegation import DELEGATE_TOOL, parse_delegation
from actors.providers.base import ToolCall
from actors.results import AwaitingApproval, Delegated, LoopResult
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.redaction import redact_arguments
from podium.core import tracing
from podium.core.errors import PermanentError, TransientError
from topics.messages import Action, ApprovalVerdict, DecisionKind, ToolCalledData


async def tool_call(run: StepRun, conv: Conversation, call: ToolCall) -> LoopResult | None:
    profile = run.profile
    delegation = call.name == DELEGATE_TOOL and bool(profile.delegates)
    if delegation:
        problem = parse_delegation(call, profile.delegates)[2]
        if problem is not None:
            conv.messages.append(tool_message(call, problem))
            return None
    elif call.name not in profile.tools:
        conv.messages.append(
            tool_message(call, f"error: tool {call.name!r} is not available to you")
        )
        return None
    index = conv.call_index
    conv.call_index += 1
    decision = await run.authorize(
        action=Action.TOOL_CALL,
        tool=call.name,
        arguments=call.arguments,
        step_number=conv.turns,
        call_index=index,
    )
    if decision.decision == DecisionKind.APPROVAL_REQUIRED and decision.approval_id:
        conv.call_index = index  # the approved call keeps its index
        conv.pending.insert(0, call)
        return AwaitingApproval(
            approval_id=decision.approval_id,
            decision=decision,
            tool_call=call,
            conversation=conv.dump(),
            model_calls=run.model_calls,
        )
    if decision.decision != DecisionKind.ALLOW:
        await _denied(run, conv, call, decision.request_id, index, decision.reason)
        return None
    if delegation:
        return await _delegate(run, conv, call, decision.request_id, index)
    await _execute(run, conv, call, decision.request_id, index)
    return None


async def resolve_approval(
    run: StepRun, conv: Conversation, call: ToolCall, approval: ApprovalVerdict
) -> LoopResult | None:
    """The parked call, once its approval is decided: denied, run, or (a `delegate`) handed
    to its worker (`Delegated`, the step parks again)."""
    index = conv.call_index
    conv.call_index += 1
    if approval.decision != "granted":
        reason = approval.reason or f"approval {approval.decision}"
        await _denied(run, conv, call, "", index, f"a person did not approve it: {reason}")
        return None
    decision = await run.authorize(
        action=Action.TOOL_CALL,
        tool=call.name,
        arguments=call.arguments,
        step_number=conv.turns,
        call_index=index,
        approval_id=approval.approval_id,
    )
    if decision.decision != DecisionKind.ALLOW:
        await _denied(run, conv, call, decision.request_id, index, decision.reason)
        return None
    if call.name == DELEGATE_TOOL and run.profile.delegates:
        return await _delegate(run, conv, call, decision.request_id, index)
    await _execute(run, conv, call, decision.request_id, index)
    return None


async def _delegate(
    run: StepRun, conv: Conversation, call: ToolCall, request_id: str, index: int
) -> Delegated:
    """An allowed `delegate` call: recorded as `tool.called`, then the step parks for the
    worker."""
    worker, instruction, _ = parse_delegation(call, run.profile.delegates)
    step = run.step
    await run.usage.emit(
        step,
        ToolCalledData(
            request_id=request_id,
            tool=call.name,
            arguments=redact_arguments(call.arguments),
            status="ok",
            idempotency_key=f"{step.task_id}/{step.step_id}/{index}",
        ),
        agent=run.profile.name,
    )
    return Delegated(
        worker=worker,
        instruction=instruction,
        tool_call_id=call.id,
        conversation=conv.dump(),
        model_calls=run.model_calls,
    )


async def _execute(
    run: StepRun, conv: Conversation, call: ToolCall, request_id: str, index: int
) -> None:
    step = run.step
    key = f"{step.task_id}/{step.step_id}/{index}"
    started = time.monotonic()
    async with tracing.span(
        f"tool {call.name}",
        attributes={"podium.tool": call.name, "podium.idempotency_key": key},
    ):
        try:
            result = await run.tools.invoke(
                ToolInvocation(
                    tool=call.name,
                    arguments=call.arguments,
                    idempotency_key=key,
                    timeout_s=max(0.1, run.remaining()),
                    task_id=step.task_id,
                    agent=run.profile.name,
                )
            )
        except PermanentError as exc:
            result = ToolResult(ok=False, content=f"error: {exc}", error=str(exc))
        except TransientError as exc:
            result = ToolResult(
                ok=False, content="error: the tool is unavailable right now", error=str(exc)
            )
        tracing.annotate(**{"podium.tool.ok": result.ok})
        if not result.ok:
            tracing.mark_error(result.error or "tool error")
    await run.usage.emit(
        step,
        ToolCalledData(
            request_id=request_id,
            tool=call.name,
            arguments=redact_arguments(call.arguments),
            status="ok" if result.ok else "error",
            latency_ms=(time.monotonic() - started) * 1000,
            idempotency_key=key,
            error=result.error[:500],
        ),
        agent=run.profile.name,
    )
    conv.messages.append(tool_message(call, result.content))
    if result.ok:
        conv.record_success(call, result.content)


async def _denied(
    run: StepRun, conv: Conversation, call: ToolCall, request_id: str, index: int, reason: str
) -> None:
    step = run.step
    await run.usage.emit(
        step,
        ToolCalledData(
            request_id=request_id or uuid.uuid4().hex,
            tool=call.name,
            arguments=redact_arguments(call.arguments),
            status="denied",
            idempotency_key=f"{step.task_id}/{step.step_id}/{index}",
            error=reason[:500],
        ),
        agent=run.profile.name,
    )
    conv.messages.append(
        tool_message(call, f"denied: the call to {call.name} was not allowed ({reason})")
    )
