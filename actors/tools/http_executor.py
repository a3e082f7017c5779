"""`http` tools: POST the JSON arguments to the tool's endpoint, with the idempotency key and the
headers of the tool's `auth` (`actors.tools.credentials`).

The endpoint is the operator's (from the Tool manifest), so private addresses are allowed here;
the model only chooses the arguments, which are validated against the schema before the call.
Redirects are not followed, so the credentials go to the endpoint only; a value of them that
the answer echoes is masked in what the model, the events and the logs see."""

from __future__ import annotations

import codecs
import json

import httpx

from actors.providers.errors import parse_retry_after
from actors.tools._attempts import RetryableToolFailure, ToolFailure, run_attempts
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.credentials import ToolCredentials, masked
from podium.core.retry import Jitter

MAX_RESULT_CHARS = 100_000
"""A tool's answer is cut here before it goes to the model; the body is read no further."""
MAX_ERROR_CHARS = 500
"""What the audit keeps of an error response's body."""

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
        max_backoff_s: float | None = None,
        jitter: Jitter = "full",
        client: httpx.AsyncClient | None = None,
        credentials: ToolCredentials | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.jitter: Jitter = jitter
        self.credentials = credentials
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        credentials = self.credentials

        async def attempt(budget_s: float) -> str:
            headers = {
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: invocation.idempotency_key,
            }
            if credentials is not None:  # a failure here is raised before any request
                headers.update(await credentials.headers(self._client, budget_s))
            try:
                async with self._client.stream(
                    "POST",
                    self.endpoint,
                    content=json.dumps(invocation.arguments).encode(),
                    headers=headers,
                    timeout=budget_s,
                ) as response:
                    status = response.status_code
                    if 200 <= status < 300:
                        text, _ = await read_capped_text(response, MAX_RESULT_CHARS)
                        return text
                    body, _ = await read_capped_text(response, MAX_ERROR_CHARS)
            except httpx.TimeoutException as exc:
                raise RetryableToolFailure(
                    f"tool {self.name} timed out", f"timeout: {type(exc).__name__}"
                ) from exc
            except httpx.TransportError as exc:
                raise RetryableToolFailure(
                    f"tool {self.name} is unreachable", f"{type(exc).__name__}: {exc}"
                ) from exc
            if status == 401 and credentials is not None:
                credentials.rejected()
            detail = f"HTTP {status}: {body}"
            safe = f"tool {self.name} failed (HTTP {status})"
            if status in _RETRYABLE or status >= 500:
                raise RetryableToolFailure(
                    safe, detail, retry_after_s=parse_retry_after(dict(response.headers))
                )
            raise ToolFailure(safe, detail)

        result = await run_attempts(
            invocation,
            attempt,
            attempt_timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            jitter=self.jitter,
        )
        return masked(result, credentials)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


async def read_capped_text(response: httpx.Response, max_chars: int) -> tuple[str, bool]:
    """The response's text up to `max_chars`, and whether there was more. The body is streamed
    and the read stops at the cap: a huge body costs at most one network chunk beyond it."""
    try:
        decoder = codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parts: list[str] = []
    size = 0
    async for chunk in response.aiter_bytes():
        text = decoder.decode(chunk)
        parts.append(text)
        size += len(text)
        if size >= max_chars:
            return "".join(parts)[:max_chars], True
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)[:max_chars], False
