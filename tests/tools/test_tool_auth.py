"""Orloj's `Tool.spec.auth` as the http executor sends it: the header of each profile, from a
sealed Secret opened with the actor's key; an OAuth2 token exchanged once and cached; a Secret
that cannot be had fails the call before any request, naming the tool, the Secret and the fix,
never the value; a value the tool echoes is masked."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.tools import ToolInvocation, ToolRegistry
from actors.tools.credentials import OAuth2Tokens
from manifests.models import Secret
from manifests.sealing import new_private_key, sealed_document
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.tools.manifests_helpers import tool

KEY = new_private_key()
VALUE = "tk-7Qw2Zr9Lp4Xv1Nb8"


def sealed(name: str, values: dict[str, str], key: X25519PrivateKey = KEY) -> Secret:
    raw: dict[str, Any] = {
        "apiVersion": "orloj.dev/v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "spec": {"stringData": values},
    }
    return Secret.model_validate(sealed_document(raw, Secret.model_validate(raw), key.public_key()))


def call(name: str = "t") -> ToolInvocation:
    return ToolInvocation(tool=name, arguments={"q": "x"}, idempotency_key="t1/s1/0")


@pytest.fixture
def token_server() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer().start()
    try:
        yield server
    finally:
        server.stop()


async def invoke_once(
    server: FakeHTTPServer,
    auth: dict[str, Any],
    secrets: dict[str, Secret],
    *,
    sealing_key: X25519PrivateKey | None = KEY,
) -> tuple[bool, str, str]:
    registry = ToolRegistry(
        {"t": tool("t", endpoint=server.url + "/t", auth=auth)},
        secrets=secrets,
        sealing_key=sealing_key,
    )
    try:
        result = await registry.invoke(call())
    finally:
        await registry.aclose()
    return result.ok, result.content, result.error


@pytest.mark.parametrize(
    ("auth", "values", "header", "expected"),
    [
        ({"secretRef": "k"}, {"value": VALUE}, "authorization", f"Bearer {VALUE}"),
        (
            {"profile": "bearer", "secretRef": "k:api"},
            {"api": VALUE, "value": "other"},
            "authorization",
            f"Bearer {VALUE}",
        ),
        (
            {"profile": "api_key_header", "secretRef": "team/k", "headerName": "X-Stub-Key"},
            {"value": VALUE},
            "x-stub-key",
            VALUE,
        ),
        (
            {"profile": "basic", "secretRef": "k"},
            {"value": f"alice:{VALUE}"},
            "authorization",
            "Basic " + base64.b64encode(f"alice:{VALUE}".encode()).decode(),
        ),
    ],
)
async def test_each_profile_sends_its_header(
    fake_server: FakeHTTPServer,
    auth: dict[str, Any],
    values: dict[str, str],
    header: str,
    expected: str,
) -> None:
    fake_server.queue(Reply(body={"ok": True}))
    ok, _, error = await invoke_once(fake_server, auth, {"k": sealed("k", values)})
    assert ok, error
    [request] = fake_server.requests
    assert request.headers[header] == expected
    assert request.headers["idempotency-key"] == "t1/s1/0"
    assert request.json() == {"q": "x"}


def oauth2_auth(token_server: FakeHTTPServer) -> dict[str, Any]:
    return {
        "profile": "oauth2_client_credentials",
        "secretRef": "client",
        "tokenURL": token_server.url + "/oauth/token",
        "scopes": ["tools.read", "tools.write"],
    }


CLIENT = {"client_id": "podium-tests", "client_secret": "cs-9Hd3Kq7Wm2Tz"}


async def test_oauth2_exchanges_the_client_credentials_once_and_caches_the_token(
    fake_server: FakeHTTPServer, token_server: FakeHTTPServer
) -> None:
    token_server.queue(
        Reply(body={"access_token": "at-1", "expires_in": 3600}),
        Reply(body={"access_token": "at-2", "expires_in": 3600}),
    )
    fake_server.queue(Reply(body={"ok": True}))
    tokens = OAuth2Tokens()
    secrets = {"client": sealed("client", CLIENT)}
    manifests = {"t": tool("t", endpoint=fake_server.url + "/t", auth=oauth2_auth(token_server))}
    # Two registries (a new catalog) share the actor's token cache.
    for _ in range(2):
        registry = ToolRegistry(manifests, secrets=secrets, sealing_key=KEY, tokens=tokens)
        try:
            for _ in range(2):
                result = await registry.invoke(call())
                assert result.ok, result
        finally:
            await registry.aclose()
    [exchange] = token_server.requests
    assert exchange.method == "POST" and exchange.path == "/oauth/token"
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(exchange.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["podium-tests"],
        "client_secret": ["cs-9Hd3Kq7Wm2Tz"],
        "scope": ["tools.read tools.write"],
    }
    assert [r.headers["authorization"] for r in fake_server.requests] == ["Bearer at-1"] * 4


async def test_oauth2_token_expires_and_a_401_evicts_it(
    fake_server: FakeHTTPServer, token_server: FakeHTTPServer
) -> None:
    # A 401 of the tool drops the cached token: the next call exchanges again (as Orloj does).
    token_server.queue(
        Reply(body={"access_token": "at-1", "expires_in": 3600}),
        Reply(body={"access_token": "at-2", "expires_in": 3600}),
    )
    fake_server.queue(Reply(status=401, body="expired"), Reply(body={"ok": True}))
    registry = ToolRegistry(
        {"t": tool("t", endpoint=fake_server.url + "/t", auth=oauth2_auth(token_server))},
        secrets={"client": sealed("client", CLIENT)},
        sealing_key=KEY,
    )
    try:
        first = await registry.invoke(call())
        assert not first.ok and "HTTP 401" in first.error
        second = await registry.invoke(call())
        assert second.ok, second
    finally:
        await registry.aclose()
    assert len(token_server.requests) == 2
    assert [r.headers["authorization"] for r in fake_server.requests] == [
        "Bearer at-1",
        "Bearer at-2",
    ]


async def test_oauth2_token_cache_honours_expires_in() -> None:
    now = [1000.0]
    tokens = OAuth2Tokens(clock=lambda: now[0])
    answers = iter([("at-1", 3600.0), ("at-2", 10.0), ("at-3", 3600.0)])

    async def exchange() -> tuple[str, float]:
        return next(answers)

    key = ("http://idp/token", "c", "")
    assert await tokens.token(key, exchange) == "at-1"
    now[0] += 3569  # 30 s before expiry it is still good (Orloj's margin) ...
    assert await tokens.token(key, exchange) == "at-1"
    now[0] += 1  # ... and then it is not
    assert await tokens.token(key, exchange) == "at-2"
    now[0] += 9.9  # a token shorter-lived than the margin is kept its whole life
    assert await tokens.token(key, exchange) == "at-2"
    now[0] += 0.1
    assert await tokens.token(key, exchange) == "at-3"


async def test_oauth2_refused_credentials_fail_permanently_and_mask_the_secret(
    fake_server: FakeHTTPServer, token_server: FakeHTTPServer
) -> None:
    token_server.queue(Reply(status=401, body="bad client_secret cs-9Hd3Kq7Wm2Tz"))
    ok, content, error = await invoke_once(
        fake_server, oauth2_auth(token_server), {"client": sealed("client", CLIENT)}
    )
    assert not ok
    assert "Tool/t: auth.secretRef 'client': the token endpoint" in error
    assert "answered HTTP 401" in error and "check the client_id and client_secret" in error
    assert "cs-9Hd3Kq7Wm2Tz" not in error + content
    assert fake_server.requests == [] and len(token_server.requests) == 1


@pytest.mark.parametrize(
    ("auth", "secrets", "sealing_key", "expected"),
    [
        (
            {"secretRef": "k"},
            {},
            KEY,
            "Tool/t: auth.secretRef 'k': Secret/k is not applied; apply it with `podium apply`",
        ),
        (
            {"secretRef": "k:api"},
            {"k": sealed("k", {"value": VALUE})},
            KEY,
            "Tool/t: auth.secretRef 'k:api': Secret/k has no key 'api' (it has value)",
        ),
        (
            {"secretRef": "k"},
            {"k": sealed("k", {"value": VALUE}, key=new_private_key())},
            KEY,
            "is sealed to the sealing key",
        ),
        (
            {"secretRef": "k"},
            {"k": sealed("k", {"value": VALUE})},
            None,
            "this actor has no sealing key to open Secret/k with; the operator sets "
            "PODIUM_ACTOR_SEALING_KEY",
        ),
        (
            {"profile": "basic", "secretRef": "k"},
            {"k": sealed("k", {"value": VALUE})},
            KEY,
            "the value of a basic Secret is `user:password`",
        ),
        (
            {"secretRef": "k"},
            {"k": sealed("k", {"value": f"{VALUE}\nX-Injected: 1"})},
            KEY,
            "empty or holds control characters",
        ),
    ],
)
async def test_a_secret_that_cannot_be_had_fails_the_call_before_any_request(
    fake_server: FakeHTTPServer,
    auth: dict[str, Any],
    secrets: dict[str, Secret],
    sealing_key: X25519PrivateKey | None,
    expected: str,
) -> None:
    fake_server.queue(Reply(body={"ok": True}))
    ok, content, error = await invoke_once(fake_server, auth, secrets, sealing_key=sealing_key)
    assert not ok
    assert expected in error, error
    assert "tool t failed: its credentials cannot be had (permanent" in content
    assert VALUE not in error + content
    assert fake_server.requests == []


async def test_a_value_the_tool_echoes_is_masked(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(
        Reply(body={"you_sent": f"X-Stub-Key: {VALUE}"}),
        Reply(status=403, body=f"key {VALUE} is not allowed"),
    )
    registry = ToolRegistry(
        {
            "t": tool(
                "t",
                endpoint=fake_server.url + "/t",
                auth={"profile": "api_key_header", "secretRef": "k", "headerName": "X-Stub-Key"},
            )
        },
        secrets={"k": sealed("k", {"value": VALUE})},
        sealing_key=KEY,
    )
    try:
        echoed = await registry.invoke(call())
        refused = await registry.invoke(call())
    finally:
        await registry.aclose()
    assert echoed.ok and json.loads(echoed.content) == {"you_sent": "X-Stub-Key: ***"}
    assert not refused.ok and refused.error == "HTTP 403: key *** is not allowed"
    assert all(r.headers["x-stub-key"] == VALUE for r in fake_server.requests)


async def test_a_secret_cut_by_the_result_cap_is_masked_too(fake_server: FakeHTTPServer) -> None:
    """The answer is cut at MAX_RESULT_CHARS in the middle of the echoed value: the part of it
    left at the end is masked as the whole value would be."""
    from actors.tools.http_executor import MAX_RESULT_CHARS

    kept = 7  # the first 7 characters of the value are before the cut
    fake_server.queue(Reply(body="a" * (MAX_RESULT_CHARS - kept) + VALUE + " and more"))
    registry = ToolRegistry(
        {"t": tool("t", endpoint=fake_server.url + "/t", auth={"secretRef": "k"})},
        secrets={"k": sealed("k", {"value": VALUE})},
        sealing_key=KEY,
    )
    try:
        result = await registry.invoke(call())
    finally:
        await registry.aclose()
    assert result.ok
    assert VALUE[:kept] not in result.content
    assert result.content == "a" * (MAX_RESULT_CHARS - kept) + "***", result.content[-40:]
