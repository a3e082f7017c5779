"""The seam between the agent loop and a tool: one Protocol, plain data in and out."""

from __future__ import annotations

from typing import Any, Protocol

from msgspec import Struct


class ToolInvocation(Struct, frozen=True, kw_only=True):
    tool: str
    arguments: dict[str, Any]
    idempotency_key: str
    """`task_id/step_id/call_index`: the same on every re-run of the call; HTTP tools get it as
    the `Idempotency-Key` header."""
    timeout_s: float = 30.0
    task_id: str = ""
    agent: str = ""
    """The task and the agent of the call: the memory tools use the agent's Memory, the tools
    that receive Orloj's contract envelope both."""


class ToolResult(Struct, frozen=True, kw_only=True):
    ok: bool
    content: str
    """What goes back to the model: the result, or a safe error message."""
    error: str = ""
    """For the audit trail: what went wrong, when not ok."""


class ToolExecutor(Protocol):
    """Runs one kind of tool. Never raises for a tool's own failure: returns ok=False."""

    async def invoke(self, invocation: ToolInvocation) -> ToolResult: ...

    async def aclose(self) -> None: ...
