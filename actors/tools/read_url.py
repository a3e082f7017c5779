"""The built-in `read-url`: a real HTTP GET with size and time limits, text out.

Every address the host resolves to must be public (not private, loopback, link-local, multicast,
reserved or unspecified), at the first request and at every redirect, unless the `read-url` Tool
manifest sets `allow_private_networks: true`. The name is resolved once per request and the
connection goes to an address that was checked (the Host header and TLS server name keep the
name), so a second answer of the DNS cannot point the request elsewhere. HTML comes back as
text with tags stripped."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import ipaddress
import re
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from actors.tools._attempts import RetryableToolFailure, ToolFailure, run_attempts
from actors.tools.base import ToolInvocation, ToolResult
from podium.core.retry import Jitter

NAME = "read-url"
DESCRIPTION = "Fetch a web page by URL and return its text."
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"url": {"type": "string", "description": "An http(s) URL.", "maxLength": 2048}},
    "required": ["url"],
}
MAX_BYTES = 1_000_000
"""The body is read up to this size; the rest is dropped and the text says so."""
MAX_TEXT_CHARS = 50_000
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT_S = 15.0

_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="podium-read-url-dns")
"""Name lookups run here, not on the loop's default executor that other work can fill."""

_DROP_BLOCKS = re.compile(r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6]|/tr|/title)\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(markup: str) -> str:
    """Simple tag stripping: scripts and styles dropped, block ends as newlines, entities read."""
    text = _DROP_BLOCKS.sub(" ", markup)
    text = _COMMENTS.sub(" ", text)
    text = _BREAKS.sub("\n", text)
    text = _TAGS.sub(" ", text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def resolve(url: str, *, allow_private_networks: bool) -> list[str]:
    """The addresses to connect to for the URL's host, resolved once. Unless private networks
    are allowed, every address must be public; else `ToolFailure`. The caller connects to these
    addresses, not to the name: a second lookup could answer differently (DNS rebinding)."""
    parts = httpx.URL(url)
    host = parts.host
    if not host:
        raise ToolFailure("the URL has no host", f"no host in {url!r}")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        lookup = functools.partial(
            socket.getaddrinfo, host, parts.port or 443, type=socket.SOCK_STREAM
        )
        try:
            infos = await asyncio.get_running_loop().run_in_executor(_RESOLVER, lookup)
        except OSError as exc:
            raise ToolFailure(f"cannot resolve host {host}", f"resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if allow_private_networks:
        return addresses
    refused = sorted(a for a in addresses if not is_public_address(a))
    if refused or not addresses:
        raise ToolFailure(
            f"refused: {host} is a private, loopback or link-local address",
            f"{host} resolves to non-public {', '.join(refused) or 'nothing'}",
        )
    return addresses


class ReadUrlExecutor:
    """Implements `ToolExecutor` for `read-url`."""

    def __init__(
        self,
        *,
        allow_private_networks: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = MAX_BYTES,
        max_attempts: int = 1,
        backoff_s: float = 0.5,
        max_backoff_s: float | None = None,
        jitter: Jitter = "full",
    ) -> None:
        self.allow_private_networks = allow_private_networks
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.jitter: Jitter = jitter
        # No keep-alive: a pooled connection is keyed by address, and must not serve another
        # host name (with its own TLS server name) that resolves to the same address. No proxy
        # from the environment: a proxy would resolve the name again, past the address check.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": "podium-read-url/0.1", "Accept": "text/html, text/*;q=0.9"},
        )

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        url = invocation.arguments.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return ToolResult(
                ok=False, content="read-url needs an http(s) URL", error=f"bad url {url!r}"
            )

        async def attempt(budget_s: float) -> str:
            return await self._fetch(url, budget_s)

        return await run_attempts(
            invocation,
            attempt,
            attempt_timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            jitter=self.jitter,
        )

    async def _fetch(self, url: str, budget_s: float) -> str:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme not in ("http", "https"):
                raise ToolFailure("refused: redirect to a non-http URL", f"redirect to {current}")
            addresses = await resolve(current, allow_private_networks=self.allow_private_networks)
            try:
                async with self._open(current, addresses, budget_s) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    status = response.status_code
                    if status >= 400:
                        safe = f"read-url failed (HTTP {status})"
                        if status in (408, 429) or status >= 500:
                            raise RetryableToolFailure(safe, f"HTTP {status} from {current}")
                        raise ToolFailure(safe, f"HTTP {status} from {current}")
                    body, truncated = await self._read_limited(response)
                    content_type = response.headers.get("content-type", "")
                    encoding = response.encoding or "utf-8"
            except httpx.TimeoutException as exc:
                raise RetryableToolFailure("read-url timed out", f"timeout: {current}") from exc
            except httpx.TransportError as exc:
                raise RetryableToolFailure(
                    "read-url could not connect", f"{type(exc).__name__}: {exc}"
                ) from exc
            return self._render(body, truncated, content_type, encoding)
        raise ToolFailure("read-url: too many redirects", f"more than {MAX_REDIRECTS} from {url}")

    @contextlib.asynccontextmanager
    async def _open(
        self, url: str, addresses: list[str], budget_s: float
    ) -> AsyncIterator[httpx.Response]:
        """GET `url` from the first of `addresses` that accepts the connection: the URL's host
        stays in the Host header and, for https, in the TLS server name (SNI and certificate)."""
        target = httpx.URL(url)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        failure: httpx.ConnectError | None = None
        for address in addresses:
            request = self._client.build_request(
                "GET",
                target.copy_with(host=address),
                headers={"Host": target.netloc.decode("ascii")},
                timeout=budget_s,
                extensions=extensions,
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = exc
                continue
            try:
                yield response
            finally:
                await response.aclose()
            return
        assert failure is not None
        raise failure

    async def _read_limited(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], True
        return b"".join(chunks), False

    def _render(self, body: bytes, truncated: bool, content_type: str, encoding: str) -> str:
        kind = content_type.split(";")[0].strip().lower()
        textual = (
            not kind
            or kind.startswith("text/")
            or kind in ("application/json", "application/xml", "application/xhtml+xml")
        )
        if not textual:
            raise ToolFailure(
                f"read-url cannot read {kind} content", f"unsupported content-type {kind}"
            )
        try:
            text = body.decode(encoding, errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
        if "html" in kind or (not kind and "<html" in text[:1000].lower()):
            text = html_to_text(text)
        if len(text) > MAX_TEXT_CHARS:
            text, truncated = text[:MAX_TEXT_CHARS], True
        return text + ("\n[truncated]" if truncated else "")

    async def aclose(self) -> None:
        await self._client.aclose()
