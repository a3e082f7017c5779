"""`external` and `webhook-callback` tools: Orloj's contract envelope POSTed to the endpoint.

`external`: the answer is a `ToolExecutionResponse` (`actors.tools.contract`).

`webhook-callback` (asynchronous): the tool answers `200` with the response at once, or `202
Accepted`; then the actor polls `GET {endpoint}/{request_id}` every `poll_interval_s` until it
answers a response with a terminal status (`202`, `204` or `status: pending` mean not yet), or
the attempt's timeout (`runtime.timeout`) expires. As in Orloj, a poll that fails to connect is
retried at the next tick, and an HTTP error ends the call. The request id is the same for every
attempt of the call, so a re-submission after a timeout finds the same job. The wait is a
coroutine: the actor's other steps go on meanwhile.

Both send `Content-Type: application/json`, `X-Tool-Contract-Version: v1`, the call's
`Idempotency-Key` and the headers of the tool's `auth`; redirects are not followed."""

from __future__ import annotations

import asyncio
import json

import httpx

from actors.providers.errors import parse_retry_after
from actors.tools import contract
from actors.tools._attempts import RetryableToolFailure, ToolFailure, run_runtime_attempts
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.credentials import ToolCredentials, masked
from actors.tools.http_executor import IDEMPOTENCY_HEADER, MAX_ERROR_CHARS, read_capped_text
from manifests.models import Tool

MAX_RESPONSE_CHARS = 4 * 1024 * 1024
"""Orloj reads at most 4 MiB of a contract response."""
_RETRYABLE = frozenset({408, 409, 425, 429})


class _Unreachable(RetryableToolFailure):
    """No connection to the tool: a poll tries again at its next tick."""


class ContractToolExecutor:
    """Implements `ToolExecutor` for one `external` or `webhook-callback` tool."""

    def __init__(
        self,
        manifest: Tool,
        *,
        client: httpx.AsyncClient | None = None,
        credentials: ToolCredentials | None = None,
        poll_interval_s: float = 2.0,
    ) -> None:
        self.manifest = manifest
        self.name = manifest.metadata.name
        self.endpoint = manifest.spec.endpoint or ""
        self.callback = manifest.spec.type == "webhook-callback"
        self.credentials = credentials
        self.poll_interval_s = poll_interval_s
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        runtime = self.manifest.spec.runtime
        attempts = 0

        async def attempt(budget_s: float) -> str:
            nonlocal attempts
            attempts += 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + budget_s
            envelope = contract.build_request(
                self.manifest, invocation, attempt=attempts, timeout_s=budget_s
            )
            headers = {
                "Content-Type": "application/json",
                contract.CONTRACT_HEADER: contract.CONTRACT_VERSION,
                IDEMPOTENCY_HEADER: invocation.idempotency_key,
            }
            if self.credentials is not None:  # a failure here is raised before any request
                headers.update(await self.credentials.headers(self._client, budget_s))
            status, body = await self._send(
                "POST", self.endpoint, headers, json.dumps(envelope).encode(), budget_s
            )
            if not self.callback or status == 200:
                return contract.parse_response(self.name, body)
            return await self._poll(str(envelope["request_id"]), headers, deadline)

        return masked(await run_runtime_attempts(invocation, attempt, runtime), self.credentials)

    async def _poll(self, request_id: str, headers: dict[str, str], deadline: float) -> str:
        url = self.endpoint.rstrip("/") + "/" + request_id
        poll_headers = {
            key: value
            for key, value in headers.items()
            if key not in ("Content-Type", IDEMPOTENCY_HEADER)
        }
        poll_headers["Accept"] = "application/json"
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.0, min(self.poll_interval_s, deadline - loop.time())))
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RetryableToolFailure(
                    f"tool {self.name} timed out waiting for its callback",
                    f"webhook-callback: no result for request {request_id} before the timeout",
                )
            try:
                status, body = await self._send("GET", url, poll_headers, None, remaining)
            except _Unreachable:
                continue  # Orloj polls again after a connection error
            if status in (202, 204) or contract.is_pending(body):
                continue
            return contract.parse_response(self.name, body)

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        budget_s: float,
    ) -> tuple[int, bytes]:
        """The status and body of a 2xx answer; raises the failure of any other."""
        try:
            async with self._client.stream(
                method, url, content=content, headers=headers, timeout=budget_s
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    text, cut = await read_capped_text(response, MAX_RESPONSE_CHARS)
                    if cut:
                        raise ToolFailure(
                            f"tool {self.name} answered too much",
                            f"contract: response over {MAX_RESPONSE_CHARS} characters",
                        )
                    return status, text.encode()
                body, _ = await read_capped_text(response, MAX_ERROR_CHARS)
                retry_after = parse_retry_after(dict(response.headers))
        except httpx.TimeoutException as exc:
            raise RetryableToolFailure(
                f"tool {self.name} timed out", f"timeout: {type(exc).__name__}"
            ) from exc
        except httpx.TransportError as exc:
            raise _Unreachable(
                f"tool {self.name} is unreachable", f"{type(exc).__name__}: {exc}"
            ) from exc
        if status == 401 and self.credentials is not None:
            self.credentials.rejected()
        detail = f"HTTP {status} from {method} {url}: {body}"
        safe = f"tool {self.name} failed (HTTP {status})"
        if status in _RETRYABLE or status >= 500:
            raise RetryableToolFailure(safe, detail, retry_after_s=retry_after)
        raise ToolFailure(safe, detail)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
