"""The agent loop of one step: model call, tool calls, repeat, within `max_steps` and the timeout.

Every model call and every tool call is authorized first (`Gate`, the policy service's client;
it fails closed). Usage events (`model.called`, `tool.called`) go out at call time through the
`UsageSink`, outside the step's transaction, so money spent is recorded even if the step re-runs.

The loop ends in one of four ways (`actors.results.LoopResult`): finished, delegated, awaiting
an approval, or failed (transient errors are raised as `TransientError`, for the caller's bounded
step retry). One delegation at a time: when a turn holds several tool calls, they run in order
and the loop parks at each `delegate`, carrying the remaining calls in the parked state.
"""

from __future__ import annotations

import asyncio

from actors._step_run import StepRun, StepTimeout, tool_message
from actors.conversation import Conversation, first_messages
from actors.delegation import DELEGATE_TOOL
from actors.execution import (
    Again,
    Refuse,
    Reuse,
    Run,
    Violation,
    check_call,
    check_final,
    contract_done,
    exhausted,
)
from actors.model_calls import model_call
from actors.ports import Gate, ToolBox, UsageSink
from actors.profile import AgentProfile
from actors.providers.base import ChatMessage
from actors.results import Failed, Finished, LoopResult
from actors.tool_calls import resolve_approval, tool_call
from podium.core.errors import PermanentError, TransientError
from topics.messages import (
    CONTRACT_VIOLATION,
    CONTRACT_WARNING,
    ApprovalResume,
    ContractEventData,
    ContractEventKind,
    DelegationResume,
    PathUsage,
    Step,
)


class AgentLoop:
    """Runs one step of one agent. Safe to run twice for the same step (re-runs after a crash
    repeat the calls with the same idempotency keys and the same mock script positions)."""

    def __init__(
        self,
        *,
        gate: Gate,
        tools: ToolBox,
        usage: UsageSink,
        policy_timeout_s: float = 5.0,
    ) -> None:
        self._gate = gate
        self._tools = tools
        self._usage = usage
        self._policy_timeout_s = policy_timeout_s

    async def run(
        self, profile: AgentProfile, step: Step, spent: list[PathUsage] | None = None
    ) -> LoopResult:
        """Run the step; the usage of each of its model calls is appended to `spent` as it is
        made (so a caller that retries the step still counts what failed attempts spent)."""
        run = StepRun(
            gate=self._gate,
            tools=self._tools,
            usage=self._usage,
            policy_timeout_s=self._policy_timeout_s,
            profile=profile,
            step=step,
            spent=spent if spent is not None else [],
        )
        try:
            return await _run(run)
        except StepTimeout as exc:
            return Failed(error=str(exc), model_calls=run.model_calls)
        except TransientError:
            raise
        except PermanentError as exc:
            return Failed(error=str(exc), model_calls=run.model_calls)


async def _run(run: StepRun) -> LoopResult:
    step = run.step
    resume = step.resume
    if isinstance(resume, DelegationResume):
        conv = Conversation.load(resume.conversation)
        answer = resume.tool_result
        conv.messages.append(
            ChatMessage(
                role="tool",
                content=answer.content,
                tool_call_id=answer.tool_call_id,
                name=answer.name,
            )
        )
    elif isinstance(resume, ApprovalResume):
        conv = Conversation.load(resume.conversation)
        if resume.approval is not None and conv.pending:
            call = conv.pending.pop(0)
            parked = await resolve_approval(run, conv, call, resume.approval)
            if parked is not None:
                return parked
    else:
        conv = Conversation(messages=first_messages(run.profile, step))
    try:
        async with asyncio.timeout(run.remaining()):
            return await _turns(run, conv)
    except TimeoutError:
        raise run.timed_out() from None


async def _turns(run: StepRun, conv: Conversation) -> LoopResult:
    profile = run.profile
    rules = profile.execution
    while True:
        if conv.pending:
            ended = await _tool_turn(run, conv)
            if ended is not None:
                return ended
        if conv.turns >= profile.max_steps:
            return await _exhausted(run, conv)
        reply = await model_call(run, conv)
        conv.turns += 1
        conv.messages.append(
            ChatMessage(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
        )
        if reply.tool_calls:
            conv.pending = list(reply.tool_calls)
            continue
        verdict = check_final(rules, profile.tools, conv.succeeded, reply.content)
        if isinstance(verdict, Violation):
            failed = await _violated(run, conv, verdict.message)
            if failed is not None:
                return failed
        elif isinstance(verdict, Again):
            conv.messages.append(ChatMessage(role="user", content=verdict.nudge))
            continue
        outcome = reply.outcome if reply.outcome in profile.outcomes else None
        return _finished(run, conv, reply.content, outcome)


async def _tool_turn(run: StepRun, conv: Conversation) -> LoopResult | None:
    """Run the pending tool calls of a turn under the `execution` rules; a result when the step
    ends (parked, failed, stopped on the first tool, or a contract fulfilled)."""
    rules = run.profile.execution
    while conv.pending:
        call = conv.pending.pop(0)
        if call.name != DELEGATE_TOOL or not run.profile.delegates:
            verdict = check_call(rules, call, conv.succeeded, conv.results)
            if isinstance(verdict, Violation):
                failed = await _violated(run, conv, verdict.message)
                if failed is not None:
                    return failed
                verdict = verdict.then or Run()
            if isinstance(verdict, Reuse | Refuse):
                conv.messages.append(tool_message(call, verdict.content))
                continue
        before = len(conv.succeeded)
        parked = await tool_call(run, conv, call)
        if parked is not None:
            return parked
        if rules.tool_use_behavior == "stop_on_first_tool" and len(conv.succeeded) > before:
            conv.pending.clear()
            return _finished(run, conv, conv.messages[-1].content, None)
    text = _last_text(conv)
    if contract_done(rules, conv.succeeded, text):
        return _finished(run, conv, text, None)
    return None


async def _exhausted(run: StepRun, conv: Conversation) -> LoopResult:
    profile = run.profile
    if profile.execution.profile == "contract":
        violation = exhausted(profile.execution, conv.succeeded)
        if violation is not None:
            failed = await _violated(run, conv, violation.message)
            if failed is not None:
                return failed
        else:
            await _contract_event(
                run,
                conv,
                CONTRACT_WARNING,
                "max_steps reached before required output markers were satisfied",
            )
        return _finished(run, conv, _last_text(conv), None)
    return Failed(
        error=f"{profile.name}: max_steps exhausted ({profile.max_steps} model turns "
        "without a final answer)",
        model_calls=run.model_calls,
    )


async def _violated(run: StepRun, conv: Conversation, message: str) -> Failed | None:
    """Record a contract violation; the step's failure unless the agent only observes them."""
    await _contract_event(run, conv, CONTRACT_VIOLATION, message)
    if run.profile.execution.on_contract_violation == "observe":
        return None
    return Failed(
        error=f"agent contract violation: agent={run.profile.name} step={conv.turns} "
        f"error={message}",
        model_calls=run.model_calls,
    )


async def _contract_event(
    run: StepRun, conv: Conversation, kind: ContractEventKind, message: str
) -> None:
    rules = run.profile.execution
    await run.emit(
        ContractEventData(
            kind=kind,
            message=message,
            turn=conv.turns,
            profile=rules.profile,
            on_contract_violation=rules.on_contract_violation,
        )
    )


def _last_text(conv: Conversation) -> str:
    """The latest non-empty answer text of the model, as Orloj takes an agent's output."""
    for message in reversed(conv.messages):
        if message.role == "assistant" and message.content.strip():
            return message.content
    return ""


def _finished(run: StepRun, conv: Conversation, output: str, outcome: str | None) -> Finished:
    return Finished(output=output, outcome=outcome, turns=conv.turns, model_calls=run.model_calls)
