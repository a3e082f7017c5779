"""Tools under hostile input: oversized bodies, stuck functions, rebinding names."""

from __future__ import annotations

import httpx

from actors.tools import HttpToolExecutor, ToolInvocation
from actors.tools.http_executor import MAX_RESULT_CHARS
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.tools.counting import CountingTransport

CHUNK = 65_536
"""The most one read of the HTTP client takes from the socket."""


def call(tool: str, timeout_s: float = 10.0, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool=tool, arguments=dict(arguments), idempotency_key="t/s/0", timeout_s=timeout_s
    )


async def test_http_tool_stops_reading_at_the_cap(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body="x" * 20_000_000))
    transport = CountingTransport()
    client = httpx.AsyncClient(transport=transport)
    executor = HttpToolExecutor(name="big", endpoint=fake_server.url, timeout_s=10, client=client)
    try:
        result = await executor.invoke(call("big"))
    finally:
        await client.aclose()
    assert result.ok, result
    assert result.content == "x" * MAX_RESULT_CHARS
    assert transport.bytes_read <= MAX_RESULT_CHARS + CHUNK


async def test_http_tool_error_body_is_read_only_in_part(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(status=400, body="e" * 20_000_000))
    transport = CountingTransport()
    client = httpx.AsyncClient(transport=transport)
    executor = HttpToolExecutor(name="big", endpoint=fake_server.url, timeout_s=10, client=client)
    try:
        result = await executor.invoke(call("big"))
    finally:
        await client.aclose()
    assert not result.ok and result.content == "tool big failed (HTTP 400)"
    assert result.error == "HTTP 400: " + "e" * 500
    assert transport.bytes_read <= 500 + CHUNK
