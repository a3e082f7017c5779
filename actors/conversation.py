"""The conversation of one step's agent loop: its first messages, and the state a parked step
carries (so the loop continues where it stopped after a delegation or an approval)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from actors.execution import call_key
from actors.profile import AgentProfile
from actors.providers.base import ChatMessage, ToolCall
from podium.core.errors import PermanentError
from topics.messages import Step


@dataclass(slots=True)
class Conversation:
    """The serializable state of a step's loop; a parked step carries it in `resume`."""

    messages: list[ChatMessage]
    pending: list[ToolCall] = field(default_factory=list)
    turns: int = 0
    call_index: int = 0
    succeeded: list[str] = field(default_factory=list)
    """The tools that succeeded in this step, in order (`execution` rules read them)."""
    results: dict[str, str] = field(default_factory=dict)
    """The result of each successful call, by `actors.execution.call_key`."""

    def record_success(self, call: ToolCall, content: str) -> None:
        self.succeeded.append(call.name)
        self.results[call_key(call)] = content

    def dump(self) -> dict[str, Any]:
        return {
            "messages": msgspec.to_builtins(self.messages),
            "pending": msgspec.to_builtins(self.pending),
            "turns": self.turns,
            "call_index": self.call_index,
            "succeeded": list(self.succeeded),
            "results": dict(self.results),
        }

    @classmethod
    def load(cls, state: dict[str, Any]) -> Conversation:
        try:
            return cls(
                messages=msgspec.convert(state.get("messages", []), list[ChatMessage]),
                pending=msgspec.convert(state.get("pending", []), list[ToolCall]),
                turns=int(state.get("turns", 0)),
                call_index=int(state.get("call_index", 0)),
                succeeded=msgspec.convert(state.get("succeeded", []), list[str]),
                results=msgspec.convert(state.get("results", {}), dict[str, str]),
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
