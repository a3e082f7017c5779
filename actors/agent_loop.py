"""The agent loop of one step: model call, tool calls, repeat, within `max_steps` and the timeout.

Every model call and every tool call is authorized first (`Gate`, the policy service's client;
it fails closed). Usage events (`model.called`, `tool.called`) go out at call time through the
`UsageSink`, outside the step's transaction, so money spent is recorded even if the step re-runs.

The loop ends in one of four ways (`LoopResult`):
- `Finished`: the model answered without tool calls (with an outcome when one was asked for);
- `Delegated`: the supervisor's model called `delegate`; the step parks, the worker gets a step,
  and the worker's result later resumes this conversation. One delegation at a time: when a turn
  holds several tool calls, they run in order and the loop parks at each `delegate`, carrying the
  remaining calls in the parked state;
- `AwaitingApproval`: the policy asked for a person's approval of a tool call; the step parks;
- `Failed`: a permanent error, `max_steps` exhausted, or the time is up (transient errors are
  raised as `TransientError`, for the caller's bounded step retry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from actors.delegation import DELEGATE_TOOL, delegate_tool_spec, parse_delegation
from actors.providers.base import (
    ChatMessage,
    ModelProvider,
    ModelReply,
    ModelRequest,
    ToolCall,
    ToolSpec,
)
from actors.providers.errors import PermanentModelError, TransientModelError
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.redaction import redact_arguments
from podium.core import tracing
from podium.core.errors import PermanentError, TransientError
from podium.core.pricing import price_call
from podium.core.retry import retry_transient
from topics.messages import (
    Action,
    Decision,
    DecisionKind,
    ModelCalledData,
    PathUsage,
    Payload,
    Step,
    ToolCalledData,
)

log = logging.getLogger(__name__)


class Gate(Protocol):
    """The policy service's client (`policy_service.client.Authorizer`)."""

    async def authorize(
        self,
        *,
        task_id: str,
        system: str,
        agent: str,
        step_id: str,
        action: Action,
        model: str | None = None,
        endpoint: str | None = None,
        tool: str | None = None,
        arguments: dict[str, Any] | None = None,
        estimated_tokens: int = 0,
        step_number: int = 0,
        call_index: int = 0,
        approval_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Decision: ...


class ToolBox(Protocol):
    """The tools an agent may be offered and run (`actors.tools.ToolRegistry`)."""

    def spec_for(self, name: str) -> ToolSpec: ...

    async def invoke(self, invocation: ToolInvocation) -> ToolResult: ...


class UsageSink(Protocol):
    """Where call-time usage events go (a non-transactional, idempotent producer)."""

    async def emit(self, step: Step, payload: Payload, *, agent: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One endpoint and model to try, in order (primary first, then fallbacks)."""

    endpoint: str
    provider_name: str
    model: str
    provider: ModelProvider
    pricing: Any = None
    """The endpoint's own prices (`ModelEndpoint.spec.pricing`), when it sets them."""


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """Everything the loop needs to know about an agent, read from the catalog."""

    name: str
    system_prompt: str
    models: Sequence[ModelChoice]
    tools: Sequence[str] = ()
    delegates: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    max_steps: int = 8
    timeout_s: float = 60.0
    max_output_tokens: int = 1024
    model_attempts: int = 3
    model_backoff_s: float = 0.5


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    output: str
    outcome: str | None
    turns: int
    model_calls: int


@dataclass(frozen=True, slots=True)
class Delegated:
    worker: str
    instruction: str
    tool_call_id: str
    state: dict[str, Any]
    model_calls: int


@dataclass(frozen=True, slots=True)
class AwaitingApproval:
    approval_id: str
    decision: Decision
    tool_call: ToolCall
    state: dict[str, Any]
    model_calls: int


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    model_calls: int


LoopResult = Finished | Delegated | AwaitingApproval | Failed


@dataclass(slots=True)
class UsageTally:
    """The usage of a step's successful model calls, added up as they are made (across the
    step's attempts, so a retried step still counts what its failed attempts spent)."""

    tokens: int = 0
    cost_usd: float = 0.0
    priced_calls: int = 0
    unpriced_calls: int = 0

    def add(self, tokens: int, cost_usd: float | None) -> None:
        self.tokens += tokens
        if cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += cost_usd
            self.priced_calls += 1

    def total(self) -> PathUsage:
        return PathUsage(
            tokens=self.tokens,
            cost_usd=self.cost_usd,
            priced_calls=self.priced_calls,
            unpriced_calls=self.unpriced_calls,
        )


class StepTimeout(PermanentError):
    """The step's timeout or the task's deadline passed."""


# --- conversation state -----------------------------------------------------------------------


@dataclass(slots=True)
class Conversation:
    """The serializable state of a step's loop; a parked step carries it in `resume`."""

    messages: list[ChatMessage]
    pending: list[ToolCall] = field(default_factory=list)
    turns: int = 0
    call_index: int = 0

    def dump(self) -> dict[str, Any]:
        return {
            "messages": msgspec.to_builtins(self.messages),
            "pending": msgspec.to_builtins(self.pending),
            "turns": self.turns,
            "call_index": self.call_index,
        }

    @classmethod
    def load(cls, state: dict[str, Any]) -> Conversation:
        try:
            return cls(
                messages=msgspec.convert(state.get("messages", []), list[ChatMessage]),
                pending=msgspec.convert(state.get("pending", []), list[ToolCall]),
                turns=int(state.get("turns", 0)),
                call_index=int(state.get("call_index", 0)),
            )
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            raise PermanentError(f"the parked conversation cannot be restored: {exc}") from None


def render_input(value: str | dict[str, Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)


def first_messages(profile: AgentProfile, step: Step) -> list[ChatMessage]:
    """The system prompt and the user message: the task input, the upstream outputs, and the
    supervisor's instruction for a delegated step."""
    parts = [f"Task:\n{render_input(step.task_input)}"]
    for out in step.upstream:
        parts.append(f"Output of {out.agent}:\n{out.output}")
    if step.instruction:
        boss = step.delegation.supervisor if step.delegation else "the supervisor"
        parts.append(f"Instruction from {boss}:\n{step.instruction}")
    return [
        ChatMessage(role="system", content=profile.system_prompt),
        ChatMessage(role="user", content="\n\n".join(parts)),
    ]


def estimate_tokens(messages: Sequence[ChatMessage], max_output_tokens: int) -> int:
    chars = sum(
        len(m.content) + sum(len(json.dumps(c.arguments)) for c in m.tool_calls) for m in messages
    )
    return chars // 4 + max_output_tokens


# --- the loop ---------------------------------------------------------------------------------


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
        self, profile: AgentProfile, step: Step, tally: UsageTally | None = None
    ) -> LoopResult:
        """Run the step; the usage of its model calls is added to `tally` as they are made."""
        base_calls = step.model_calls.get(profile.name, 0)
        runner = _Run(self, profile, step, base_calls, tally or UsageTally())
        try:
            return await runner.run()
        except StepTimeout as exc:
            return Failed(error=str(exc), model_calls=runner.model_calls)
        except TransientError:
            raise
        except PermanentError as exc:
            return Failed(error=str(exc), model_calls=runner.model_calls)


class _Run:
    def __init__(
        self,
        loop: AgentLoop,
        profile: AgentProfile,
        step: Step,
        base_calls: int,
        tally: UsageTally,
    ) -> None:
        self.loop = loop
        self.tally = tally
        self.profile = profile
        self.step = step
        self.model_calls = base_calls
        now_mono = time.monotonic()
        budget = profile.timeout_s
        if step.deadline is not None:
            remaining = step.deadline.timestamp() - time.time()
            budget = min(budget, remaining)
        self.deadline = now_mono + budget
        self.deadline_reason = (
            "the task's deadline passed"
            if step.deadline is not None and budget < profile.timeout_s
            else f"timeout of {profile.timeout_s:g} s exceeded"
        )

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"{self.profile.name}: {self.deadline_reason}")
        return left

    def tool_specs(self) -> list[ToolSpec]:
        specs = [self.loop._tools.spec_for(name) for name in self.profile.tools]
        if self.profile.delegates:
            specs.append(delegate_tool_spec(self.profile.delegates))
        return specs

    async def run(self) -> LoopResult:
        step, profile = self.step, self.profile
        if step.resume is not None:
            conv = Conversation.load(step.resume.get("conversation", {}))
            tool_result = step.resume.get("tool_result")
            if isinstance(tool_result, dict):
                conv.messages.append(
                    ChatMessage(
                        role="tool",
                        content=str(tool_result.get("content", "")),
                        tool_call_id=str(tool_result.get("tool_call_id", "")),
                        name=str(tool_result.get("name", DELEGATE_TOOL)),
                    )
                )
            approval = step.resume.get("approval")
            if isinstance(approval, dict) and conv.pending:
                call = conv.pending.pop(0)
                await self.resolve_approval(conv, call, approval)
        else:
            conv = Conversation(messages=first_messages(profile, step))
        try:
            async with asyncio.timeout(self.remaining()):
                return await self.turns(conv)
        except TimeoutError:
            raise StepTimeout(f"{profile.name}: {self.deadline_reason}") from None

    async def turns(self, conv: Conversation) -> LoopResult:
        profile = self.profile
        while True:
            while conv.pending:
                call = conv.pending.pop(0)
                parked = await self.tool_call(conv, call)
                if parked is not None:
                    return parked
            if conv.turns >= profile.max_steps:
                return Failed(
                    error=f"{profile.name}: max_steps exhausted ({profile.max_steps} model turns "
                    "without a final answer)",
                    model_calls=self.model_calls,
                )
            reply = await self.model_call(conv)
            conv.turns += 1
            conv.messages.append(
                ChatMessage(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
            )
            if reply.tool_calls:
                conv.pending = list(reply.tool_calls)
                continue
            outcome = reply.outcome if reply.outcome in profile.outcomes else None
            return Finished(
                output=reply.content,
                outcome=outcome,
                turns=conv.turns,
                model_calls=self.model_calls,
            )

    # -- model calls ----------------------------------------------------------------------------

    async def model_call(self, conv: Conversation) -> ModelReply:
        profile = self.profile
        tools = self.tool_specs()
        estimate = estimate_tokens(conv.messages, profile.max_output_tokens)
        errors: list[str] = []
        call_number = self.model_calls
        for choice in profile.models:
            index = conv.call_index
            conv.call_index += 1
            decision = await self.authorize(
                action=Action.MODEL_CALL,
                model=choice.model,
                endpoint=choice.endpoint,
                estimated_tokens=estimate,
                step_number=conv.turns,
                call_index=index,
            )
            if decision.decision != DecisionKind.ALLOW:
                errors.append(
                    f"model {choice.model} on {choice.endpoint} denied by policy "
                    f"({decision.rule or 'policy'}): {decision.reason}"
                )
                continue
            request = ModelRequest(
                agent=profile.name,
                model=choice.model,
                messages=list(conv.messages),
                tools=tools,
                outcomes=list(profile.outcomes),
                max_output_tokens=profile.max_output_tokens,
                timeout_s=max(0.1, self.remaining()),
                call_number=call_number,
            )
            try:
                reply = await self.complete(choice, request, decision.request_id, index)
            except (TransientModelError, PermanentModelError) as exc:
                errors.append(f"{choice.endpoint}/{choice.model}: {exc}")
                if isinstance(exc, TransientModelError) and choice is profile.models[-1]:
                    raise
                continue
            self.model_calls += 1
            return reply
        raise PermanentError(f"{profile.name}: no model call succeeded: " + "; ".join(errors))

    async def complete(
        self, choice: ModelChoice, request: ModelRequest, request_id: str, index: int
    ) -> ModelReply:
        started = time.monotonic()
        attrs: dict[str, tracing.AttributeValue | None] = {
            "gen_ai.system": choice.provider_name,
            "gen_ai.request.model": choice.model,
            "podium.endpoint": choice.endpoint,
            "podium.call_index": index,
        }
        async with tracing.span(f"model {choice.model}", attributes=attrs):
            try:
                reply = await retry_transient(
                    lambda: choice.provider.complete(request),
                    max_attempts=self.profile.model_attempts,
                    base_delay_s=self.profile.model_backoff_s,
                    max_delay_s=10.0,
                    deadline=asyncio.get_running_loop().time() + self.remaining(),
                )
            except (TransientModelError, PermanentModelError) as exc:
                tracing.mark_error(str(exc))
                await self.loop._usage.emit(
                    self.step,
                    ModelCalledData(
                        request_id=request_id,
                        provider=choice.provider_name,
                        endpoint=choice.endpoint,
                        model=choice.model,
                        latency_ms=(time.monotonic() - started) * 1000,
                        call_index=index,
                        status="error",
                        error=str(exc)[:500],
                    ),
                    agent=self.profile.name,
                )
                raise
            priced = price_call(
                choice.provider_name, reply.model or choice.model, reply.usage, choice.pricing
            )
            cost, source = priced.cost_usd, priced.source
            self.tally.add(reply.usage.input_tokens + reply.usage.output_tokens, cost)
            tracing.annotate(
                **{
                    "gen_ai.usage.input_tokens": reply.usage.input_tokens,
                    "gen_ai.usage.output_tokens": reply.usage.output_tokens,
                    "podium.cached_tokens": reply.usage.cached_tokens,
                    "podium.cost_usd": cost,
                }
            )
        await self.loop._usage.emit(
            self.step,
            ModelCalledData(
                request_id=request_id,
                provider=choice.provider_name,
                endpoint=choice.endpoint,
                model=reply.model or choice.model,
                input_tokens=reply.usage.input_tokens,
                output_tokens=reply.usage.output_tokens,
                cached_tokens=reply.usage.cached_tokens,
                latency_ms=(time.monotonic() - started) * 1000,
                cost_usd=cost,
                price_source=source,
                call_index=index,
            ),
            agent=self.profile.name,
        )
        return reply

    # -- tool calls -----------------------------------------------------------------------------

    async def tool_call(self, conv: Conversation, call: ToolCall) -> LoopResult | None:
        profile = self.profile
        if call.name == DELEGATE_TOOL and profile.delegates:
            worker, instruction, problem = parse_delegation(call, profile.delegates)
            if problem is not None:
                conv.messages.append(self.tool_message(call, problem))
                return None
            return Delegated(
                worker=worker,
                instruction=instruction,
                tool_call_id=call.id,
                state={"conversation": conv.dump()},
                model_calls=self.model_calls,
            )
        if call.name not in profile.tools:
            conv.messages.append(
                self.tool_message(call, f"error: tool {call.name!r} is not available to you")
            )
            return None
        index = conv.call_index
        conv.call_index += 1
        decision = await self.authorize(
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
                state={"conversation": conv.dump()},
                model_calls=self.model_calls,
            )
        if decision.decision != DecisionKind.ALLOW:
            await self.denied(conv, call, decision.request_id, index, decision.reason)
            return None
        await self.execute(conv, call, decision.request_id, index)
        return None

    async def resolve_approval(
        self, conv: Conversation, call: ToolCall, approval: dict[str, Any]
    ) -> None:
        index = conv.call_index
        conv.call_index += 1
        verdict = str(approval.get("decision", ""))
        approval_id = str(approval.get("approval_id", ""))
        if verdict != "granted":
            reason = str(approval.get("reason") or f"approval {verdict or 'missing'}")
            await self.denied(conv, call, "", index, f"a person did not approve it: {reason}")
            return
        decision = await self.authorize(
            action=Action.TOOL_CALL,
            tool=call.name,
            arguments=call.arguments,
            step_number=conv.turns,
            call_index=index,
            approval_id=approval_id,
        )
        if decision.decision != DecisionKind.ALLOW:
            await self.denied(conv, call, decision.request_id, index, decision.reason)
            return
        await self.execute(conv, call, decision.request_id, index)

    async def execute(
        self, conv: Conversation, call: ToolCall, request_id: str, index: int
    ) -> None:
        step = self.step
        key = f"{step.task_id}/{step.step_id}/{index}"
        started = time.monotonic()
        async with tracing.span(
            f"tool {call.name}",
            attributes={"podium.tool": call.name, "podium.idempotency_key": key},
        ):
            try:
                result = await self.loop._tools.invoke(
                    ToolInvocation(
                        tool=call.name,
                        arguments=call.arguments,
                        idempotency_key=key,
                        timeout_s=max(0.1, self.remaining()),
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
        await self.loop._usage.emit(
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
            agent=self.profile.name,
        )
        conv.messages.append(self.tool_message(call, result.content))

    async def denied(
        self, conv: Conversation, call: ToolCall, request_id: str, index: int, reason: str
    ) -> None:
        step = self.step
        await self.loop._usage.emit(
            step,
            ToolCalledData(
                request_id=request_id or uuid.uuid4().hex,
                tool=call.name,
                arguments=redact_arguments(call.arguments),
                status="denied",
                idempotency_key=f"{step.task_id}/{step.step_id}/{index}",
                error=reason[:500],
            ),
            agent=self.profile.name,
        )
        conv.messages.append(
            self.tool_message(call, f"denied: the call to {call.name} was not allowed ({reason})")
        )

    @staticmethod
    def tool_message(call: ToolCall, content: str) -> ChatMessage:
        return ChatMessage(role="tool", content=content, tool_call_id=call.id, name=call.name)

    async def authorize(self, **kwargs: Any) -> Decision:
        step = self.step
        action: Action = kwargs["action"]
        async with tracing.span(
            f"policy {action}",
            attributes={
                "podium.action": str(action),
                "podium.model": kwargs.get("model"),
                "podium.tool": kwargs.get("tool"),
            },
        ):
            decision = await self.loop._gate.authorize(
                task_id=step.task_id,
                system=step.system,
                agent=self.profile.name,
                step_id=step.step_id,
                timeout_s=min(self.loop._policy_timeout_s, max(0.1, self.remaining())),
                **kwargs,
            )
            tracing.annotate(
                **{
                    "podium.decision": decision.decision,
                    "podium.rule": decision.rule,
                    "podium.request_id": decision.request_id,
                }
            )
        return decision
