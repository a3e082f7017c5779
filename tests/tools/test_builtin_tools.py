"""The built-ins: read-url (against a server on 127.0.0.1) and web-search (bundled corpus)."""

from __future__ import annotations

import pytest

from actors.tools import (
    CorpusSearchBackend,
    ReadUrlExecutor,
    SearchResult,
    ToolInvocation,
    ToolRegistry,
    WebSearchExecutor,
    html_to_text,
    is_public_address,
    search_backend_from_reference,
)
from tests.providers.fake_http import FakeHTTPServer, Reply

PAGE = """<html><head><title>Budgets</title><style>p {color: red}</style>
<script>alert("x")</script></head><body><h1>Token budgets</h1>
<p>Reserve before the call &amp; settle after.</p><!-- hidden --></body></html>"""


def call(tool: str, timeout_s: float = 10.0, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool=tool, arguments=dict(arguments), idempotency_key="t/s/0", timeout_s=timeout_s
    )


async def test_read_url_refuses_loopback_by_default(fake_server: FakeHTTPServer) -> None:
    fake_server.routes["/page"] = Reply(body=PAGE, headers={"Content-Type": "text/html"})
    registry = ToolRegistry()
    try:
        for url in (
            fake_server.url + "/page",
            fake_server.url.replace("127.0.0.1", "localhost") + "/page",
        ):
            result = await registry.invoke(call("read-url", url=url))
            assert not result.ok
            assert result.content.startswith("refused:")
        assert fake_server.requests == []
        bad = await registry.invoke(call("read-url", url="file:///etc/passwd"))
        assert not bad.ok and bad.content == "read-url needs an http(s) URL"
        unknown_field = await registry.invoke(call("read-url", url="http://x", method="POST"))
        assert not unknown_field.ok and "'method' was unexpected" in unknown_field.content
    finally:
        await registry.aclose()


async def test_read_url_fetches_text_when_private_networks_are_allowed(
    fake_server: FakeHTTPServer,
) -> None:
    fake_server.routes["/page"] = Reply(
        body=PAGE, headers={"Content-Type": "text/html; charset=utf-8"}
    )
    fake_server.routes["/moved"] = Reply(status=302, headers={"Location": "/page"})
    fake_server.routes["/big"] = Reply(body="a" * 5000, headers={"Content-Type": "text/plain"})
    fake_server.routes["/image"] = Reply(body=b"\x89PNG", headers={"Content-Type": "image/png"})
    fake_server.routes["/gone"] = Reply(status=404, body="not here")
    executor = ReadUrlExecutor(allow_private_networks=True, max_bytes=1000)
    try:
        page = await executor.invoke(call("read-url", url=fake_server.url + "/moved"))
        assert page.ok, page
        assert page.content == "Budgets\n\nToken budgets\n\nReserve before the call & settle after."
        big = await executor.invoke(call("read-url", url=fake_server.url + "/big"))
        assert big.ok and big.content == "a" * 1000 + "\n[truncated]"
        image = await executor.invoke(call("read-url", url=fake_server.url + "/image"))
        assert not image.ok and image.content == "read-url cannot read image/png content"
        gone = await executor.invoke(call("read-url", url=fake_server.url + "/gone"))
        assert not gone.ok and gone.content == "read-url failed (HTTP 404)"
    finally:
        await executor.aclose()


async def test_read_url_time_limit(fake_server: FakeHTTPServer) -> None:
    fake_server.routes["/slow"] = Reply(body="late", delay_s=2.0)
    executor = ReadUrlExecutor(allow_private_networks=True, timeout_s=0.2)
    try:
        result = await executor.invoke(call("read-url", url=fake_server.url + "/slow"))
    finally:
        await executor.aclose()
    assert not result.ok and "timed out" in result.content


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_html_to_text() -> None:
    assert html_to_text("<p>a<br>b</p><div>c &lt;d&gt;</div>") == "a\nb\nc <d>"


async def test_web_search_on_the_bundled_corpus() -> None:
    registry = ToolRegistry()
    try:
        result = await registry.invoke(call("web-search", query="token budgets and cost control"))
        assert result.ok
        first = result.content.splitlines()[0]
        assert first.startswith(
            "1. Token and cost budgets per task (https://corpus.podium.invalid/"
        )
        again = await registry.invoke(call("web-search", query="token budgets and cost control"))
        assert again.content == result.content
        limited = await registry.invoke(call("web-search", query="approval", max_results=2))
        assert limited.content.count("\n") == 3  # two results, two lines each
        nothing = await registry.invoke(call("web-search", query="zebra quantum"))
        assert nothing.ok and nothing.content == "No results."
        too_many = await registry.invoke(call("web-search", query="x", max_results=50))
        assert not too_many.ok
    finally:
        await registry.aclose()


async def test_corpus_backend_ranks_by_keywords() -> None:
    backend = CorpusSearchBackend.bundled()
    results = await backend.search("human approval for refunds", 3)
    assert results[0].title == "Human approvals for high-risk actions"
    assert 15 <= len(backend._documents) <= 25


class ListBackend:
    async def search(self, query: str, limit: int) -> list[SearchResult]:
        return [SearchResult(title=f"about {query}", url="https://example.invalid/1", snippet="s")]


def list_backend() -> ListBackend:
    return ListBackend()


async def test_pluggable_backend() -> None:
    backend = search_backend_from_reference("tests.tools.test_builtin_tools:list_backend")
    executor = WebSearchExecutor(backend)
    result = await executor.invoke(call("web-search", query="audit"))
    assert result.content == "1. about audit (https://example.invalid/1)\n   s"
    assert isinstance(search_backend_from_reference(None), CorpusSearchBackend)
    with pytest.raises(ValueError, match=r"package\.module:factory"):
        search_backend_from_reference("nonsense")
