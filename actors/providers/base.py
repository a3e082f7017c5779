"""The seam between the agent loop and a model vendor: one Protocol, plain data in and out."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from msgspec import Struct

from podium.core.pricing import Usage as Usage  # the vendors report it; pricing owns it

Role = Literal["system", "user", "assistant", "tool"]


class ToolSpec(Struct, frozen=True, kw_only=True):
    """A tool offered to the model: name, description and JSON Schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = {}


class ToolCall(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    arguments: dict[str, Any] = {}


class ChatMessage(Struct, frozen=True, kw_only=True):
    """One turn of a conversation; serializable, so a parked step can carry its conversation."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None


class ModelReply(Struct, frozen=True, kw_only=True):
    content: str = ""
    tool_calls: list[ToolCall] = []
    outcome: str | None = None
    """An outcome label (for conditional edges and loops), when the model returned one."""
    usage: Usage = Usage()
    model: str = ""
    """The model that answered, as the vendor reports it."""


class ModelRequest(Struct, frozen=True, kw_only=True):
    agent: str
    model: str
    messages: list[ChatMessage]
    tools: list[ToolSpec] = []
    outcomes: list[str] = []
    """Allowed outcome labels; the provider asks the model to pick one when non-empty."""
    max_output_tokens: int | None = None
    output_schema: dict[str, Any] | None = None
    """A JSON Schema (an object) the final answer must match: the vendor's structured output
    where it has one (`Agent.spec.execution.output_schema`)."""
    timeout_s: float = 60.0
    call_number: int = 0
    """0-based count of this agent's earlier model calls in this task (mock scripts use it)."""


class ModelProvider(Protocol):
    """A model vendor behind one call. Raises `TransientModelError` or `PermanentModelError`."""

    name: str

    async def complete(self, request: ModelRequest) -> ModelReply: ...

    async def aclose(self) -> None: ...
