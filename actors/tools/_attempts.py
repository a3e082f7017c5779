"""Running one tool call with a per-attempt timeout and bounded retries, into a `ToolResult`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from actors.tools.base import ToolInvocation, ToolResult
from manifests.models import ToolRuntime
from podium.core.errors import TransientError
from podium.core.retry import Jitter, retry_transient

log = logging.getLogger(__name__)


class ToolFailure(Exception):
    """An attempt that retrying cannot fix: `safe` goes to the model, `detail` to the audit."""

    def __init__(self, safe: str, detail: str) -> None:
        super().__init__(detail)
        self.safe = safe
        self.detail = detail


class RetryableToolFailure(TransientError):
    """A failed attempt worth retrying (timeout, connection error, 408/429/5xx)."""

    def __init__(self, safe: str, detail: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.safe = safe
        self.detail = detail


async def run_attempts(
    invocation: ToolInvocation,
    attempt: Callable[[float], Awaitable[str]],
    *,
    attempt_timeout_s: float,
    max_attempts: int,
    backoff_s: float,
    max_backoff_s: float | None = None,
    jitter: Jitter = "full",
) -> ToolResult:
    """Call `attempt(timeout)` until it returns the content for the model, within the
    invocation's overall `timeout_s`; failures become `ToolResult(ok=False)`. The waits are
    `backoff_s * 2**(n-1)` at most `max_backoff_s` (default 8 x `backoff_s`), drawn by
    `jitter` (the tool's `runtime.retry`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + invocation.timeout_s
    per_attempt = min(attempt_timeout_s, invocation.timeout_s)

    async def once() -> str:
        remaining = deadline - loop.time()
        budget = max(0.001, min(per_attempt, remaining))
        try:
            async with asyncio.timeout(budget):
                return await attempt(budget)
        except TimeoutError as exc:
            raise RetryableToolFailure(
                f"tool {invocation.tool} timed out after {budget:.1f}s",
                f"timeout after {budget:.3f}s",
            ) from exc

    try:
        content = await retry_transient(
            once,
            max_attempts=max_attempts,
            base_delay_s=backoff_s,
            max_delay_s=backoff_s * 8 if max_backoff_s is None else max_backoff_s,
            deadline=deadline,
            jitter=jitter,
        )
    except RetryableToolFailure as exc:
        return ToolResult(ok=False, content=exc.safe, error=exc.detail)
    except ToolFailure as exc:
        return ToolResult(ok=False, content=exc.safe, error=exc.detail)
    except TransientError as exc:
        return ToolResult(
            ok=False,
            content=f"tool {invocation.tool} failed temporarily",
            error=f"{type(exc).__name__}: {exc}",
        )
    return ToolResult(ok=True, content=content)


async def run_runtime_attempts(
    invocation: ToolInvocation, attempt: Callable[[float], Awaitable[str]], runtime: ToolRuntime
) -> ToolResult:
    """`run_attempts` as a Tool's `runtime` says: its timeout per attempt and its whole `retry`
    (attempts, backoff, `max_backoff`, `jitter`)."""
    retry = runtime.retry
    return await run_attempts(
        invocation,
        attempt,
        attempt_timeout_s=runtime.timeout_s,
        max_attempts=retry.max_attempts,
        backoff_s=retry.backoff,
        max_backoff_s=retry.max_backoff_s,
        jitter=retry.jitter,
    )
