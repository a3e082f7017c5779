"""The state of one run of a step's agent loop, shared by its model calls and tool calls: the
step, the agent's profile, the ports (policy, tools, usage events), the call count and the
deadline (the agent's timeout or the task's deadline, whichever comes first)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from actors.delegation import delegate_tool_spec
from actors.ports import Gate, ToolBox, UsageSink
from actors.profile import AgentProfile
from actors.providers.base import ChatMessage, ToolCall, ToolSpec
from podium.core import tracing
from podium.core.errors import PermanentError
from topics.messages import Action, Decision, PathUsage, Payload, Step


class StepTimeout(PermanentError):
    """The step's timeout or the task's deadline passed."""


def call_usage(tokens: int, cost_usd: float | None) -> PathUsage:
    """The usage of one successful model call (`cost_usd` None: its price is unknown)."""
    if cost_usd is None:
        return PathUsage(tokens=tokens, unpriced_calls=1)
    return PathUsage(tokens=tokens, cost_usd=cost_usd, priced_calls=1)


def tool_message(call: ToolCall, content: str) -> ChatMessage:
    return ChatMessage(role="tool", content=content, tool_call_id=call.id, name=call.name)


class StepRun:
    def __init__(
        self,
        *,
        gate: Gate,
        tools: ToolBox,
        usage: UsageSink,
        policy_timeout_s: float,
        profile: AgentProfile,
        step: Step,
        spent: list[PathUsage],
    ) -> None:
        self.gate = gate
        self.tools = tools
        self.usage = usage
        self.policy_timeout_s = policy_timeout_s
        self.profile = profile
        self.step = step
        self.spent = spent
        """The usage of each successful model call, appended as it is made."""
        self.model_calls = step.model_calls.get(profile.name, 0)
        budget = profile.timeout_s
        if step.deadline is not None:
            budget = min(budget, step.deadline.timestamp() - time.time())
        self.deadline = time.monotonic() + budget
        self.deadline_reason = (
            "the task's deadline passed"
            if step.deadline is not None and budget < profile.timeout_s
            else f"timeout of {profile.timeout_s:g} s exceeded"
        )

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.timed_out()
        return left

    def timed_out(self) -> StepTimeout:
        return StepTimeout(f"{self.profile.name}: {self.deadline_reason}")

    def tool_specs(self, tools: Sequence[str]) -> list[ToolSpec]:
        """The specs of `tools` (those offered this turn) and, for a supervisor, `delegate`."""
        specs = [self.tools.spec_for(name) for name in tools]
        if self.profile.delegates:
            specs.append(delegate_tool_spec(self.profile.delegates))
        return specs

    async def emit(self, payload: Payload) -> None:
        await self.usage.emit(self.step, payload, agent=self.profile.name)

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
            decision = await self.gate.authorize(
                task_id=step.task_id,
                system=step.system,
                agent=self.profile.name,
                step_id=step.step_id,
                timeout_s=min(self.policy_timeout_s, max(0.1, self.remaining())),
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
