"""Tools under hostile input: oversized bodies, stuck functions, rebinding names."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from actors.tools import (
    HttpToolExecutor,
    PythonSandbox,
    ReadUrlExecutor,
    ToolInvocation,
    ToolRegistry,
    read_url,
)
from actors.tools.http_executor import MAX_RESULT_CHARS
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.tools.counting import CountingTransport
from tests.tools.manifests_helpers import tool

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


class RebindingDns:
    """A name that resolves to a "public" address once, and to an internal one afterwards."""

    def __init__(self, name: str, first: str, then: str) -> None:
        self.name, self.first, self.then = name, first, then
        self.lookups = 0
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host != self.name:
            return self._real(host, port, *args, **kwargs)
        self.lookups += 1
        address = self.first if self.lookups == 1 else self.then
        return self._real(address, port, *args, **kwargs)


async def test_read_url_connects_to_the_address_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    public = FakeHTTPServer().start()
    port = int(public.url.rsplit(":", 1)[1])
    internal = FakeHTTPServer(host="127.0.0.2", port=port).start()
    public.routes["/page"] = Reply(body="public page", headers={"Content-Type": "text/plain"})
    internal.routes["/page"] = Reply(body="internal secret", headers={"Content-Type": "text/plain"})
    dns = RebindingDns("rebind.test", first="127.0.0.1", then="127.0.0.2")
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    # For this test 127.0.0.1 stands for a public address; 127.0.0.2 stays internal.
    monkeypatch.setattr(read_url, "is_public_address", lambda address: address == "127.0.0.1")
    executor = ReadUrlExecutor(timeout_s=5)
    try:
        result = await executor.invoke(call("read-url", url=f"http://rebind.test:{port}/page"))
    finally:
        await executor.aclose()
        public.stop()
        internal.stop()
    assert internal.requests == []
    assert result.ok and result.content == "public page", result
    (request,) = public.requests
    assert request.headers["host"] == f"rebind.test:{port}"


async def test_read_url_keeps_the_name_for_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok", headers={"Content-Type": "text/plain"})

    dns = RebindingDns("site.test", first="93.184.216.34", then="127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    executor = ReadUrlExecutor()
    await executor._client.aclose()
    executor._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    try:
        result = await executor.invoke(call("read-url", url="https://site.test/a?b=1"))
    finally:
        await executor.aclose()
    assert result.ok, result
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34/a?b=1"
    assert request.headers["host"] == "site.test"
    assert request.extensions["sni_hostname"] == "site.test"
    assert dns.lookups == 1


async def test_stuck_sync_tools_do_not_starve_read_url(fake_server: FakeHTTPServer) -> None:
    fake_server.routes["/page"] = Reply(body="still here", headers={"Content-Type": "text/plain"})
    registry = ToolRegistry(
        {
            "nap": tool(
                "nap",
                type="python",
                endpoint="tests.tools.sample_tools:nap",
                runtime={"timeout": "100ms"},
            ),
            "read-url": tool("read-url", allow_private_networks=True),
        },
        python=PythonSandbox(allowed_modules=("tests.tools",)),
    )
    try:
        naps = await asyncio.gather(
            *(registry.invoke(call("nap", timeout_s=0.1, seconds=3)) for _ in range(8))
        )
        assert all(not r.ok and "timed out" in r.content for r in naps)
        url = fake_server.url.replace("127.0.0.1", "localhost") + "/page"
        page = await registry.invoke(call("read-url", timeout_s=1.5, url=url))
        assert page.ok and page.content == "still here", page
    finally:
        await registry.aclose()


async def test_read_url_ignores_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would resolve the name again, past the address check.
    target = FakeHTTPServer().start()
    proxy = FakeHTTPServer().start()
    target.routes["/page"] = Reply(body="the page", headers={"Content-Type": "text/plain"})
    proxy.routes["/page"] = Reply(body="via the proxy", headers={"Content-Type": "text/plain"})
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setattr(read_url, "is_public_address", lambda address: address == "127.0.0.1")
    executor = ReadUrlExecutor(timeout_s=5)
    try:
        result = await executor.invoke(call("read-url", url=f"{target.url}/page"))
    finally:
        await executor.aclose()
        target.stop()
        proxy.stop()
    assert proxy.requests == []
    assert result.ok and result.content == "the page", result
