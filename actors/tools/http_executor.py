"""`http` tools: POST the JSON arguments to the tool's endpoint, with the idempotency key.

The endpoint is the operator's (from the Tool manifest), so private addresses are allowed here;
the model only chooses the arguments, which are validated against the schema before the call."""

from __future__ import annotations

import json

import httpx

from actors.providers.errors import parse_retry_after
from actors.tools._attempts import RetryableToolFailure, ToolFailure, run_attempts
from actors.tools.base import ToolInvocation, ToolResult

MAX_RESULT_CHARS = 100_000
"""A tool's answer is cut here before it goes to the model."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRYABLE = frozenset({408, 409, 425, 429})


class HttpToolExecutor:
    """Implements `ToolExecutor` for one `type: http` tool."""

    def __init__(
        self,
        *,
        name: str,
        endpoint: str,
        timeout_s: float,
        max_attempts: int = 1,
        backoff_s: float = 0.5,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        async def attempt(budget_s: float) -> str:
            try:
                response = await self._client.post(
                    self.endpoint,
                    content=json.dumps(invocation.arguments).encode(),
                    headers={
                        "Content-Type": "application/json",
                        IDEMPOTENCY_HEADER: invocation.idempotency_key,
                    },
                    timeout=budget_s,
                )
            except httpx.TimeoutException as exc:
                raise RetryableToolFailure(
                    f"tool {self.name} timed out", f"timeout: {type(exc).__name__}"
                ) from exc
            except httpx.TransportError as exc:
                raise RetryableToolFailure(
                    f"tool {self.name} is unreachable", f"{type(exc).__name__}: {exc}"
                ) from exc
            status = response.status_code
            if 200 <= status < 300:
                return response.text[:MAX_RESULT_CHARS]
            detail = f"HTTP {status}: {response.text[:500]}"
            safe = f"tool {self.name} failed (HTTP {status})"
            if status in _RETRYABLE or status >= 500:
                raise RetryableToolFailure(
                    safe, detail, retry_after_s=parse_retry_after(dict(response.headers))
                )
            raise ToolFailure(safe, detail)

        return await run_attempts(
            invocation,
            attempt,
            attempt_timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
        )

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
