"""`python` tools: `module:function`, sync or async, arguments as keyword arguments.

Each call runs in a child process of its own (`actors.tools.sandbox.PythonSandbox`), only from a
module the operator allowed, with memory and CPU limits; a call that overruns is killed. The
result goes back to the model as text (JSON for anything but a string), cut at 100,000
characters."""

from __future__ import annotations

from actors.tools._attempts import run_attempts
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.sandbox import PythonSandbox
from podium.core.retry import Jitter


class PythonToolExecutor:
    """Implements `ToolExecutor` for one `type: python` tool. A `TransientError` raised by the
    function is retried (per the tool's retry policy); any other exception fails the call."""

    def __init__(
        self,
        *,
        name: str,
        reference: str,
        timeout_s: float,
        sandbox: PythonSandbox,
        max_attempts: int = 1,
        backoff_s: float = 0.5,
        max_backoff_s: float | None = None,
        jitter: Jitter = "full",
    ) -> None:
        self.name = name
        self.reference = reference
        self.timeout_s = timeout_s
        self.sandbox = sandbox
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.jitter: Jitter = jitter

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        async def attempt(budget_s: float) -> str:
            return await self.sandbox.call(self.name, self.reference, invocation.arguments)

        return await run_attempts(
            invocation,
            attempt,
            attempt_timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            jitter=self.jitter,
        )

    async def aclose(self) -> None:
        return None
