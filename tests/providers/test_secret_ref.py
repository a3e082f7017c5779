"""`auth.secretRef`: the provider opens the catalog's sealed Secret with the actor's sealing key
and sends it as the API key; a key that cannot be had fails the call, naming what is wrong,
and the value never shows in an error."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.providers import ChatMessage, ModelRequest, PermanentModelError, make_provider
from manifests.models import Secret
from manifests.sealing import new_private_key, sealed_document
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.providers.test_anthropic_provider import message
from tests.providers.test_openai_provider import completion

PLAIN = "sk-sealed-Q7w9e2r4t6y8u0i1"
KEY = new_private_key()


def sealed(name: str, values: dict[str, str], key: X25519PrivateKey = KEY) -> Secret:
    raw = {
        "apiVersion": "orloj.dev/v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "spec": {"stringData": values},
    }
    return Secret.model_validate(sealed_document(raw, Secret.model_validate(raw), key.public_key()))


def request() -> ModelRequest:
    return ModelRequest(
        agent="a", model="m", messages=[ChatMessage(role="user", content="hi")], timeout_s=10
    )


def compatible(server: FakeHTTPServer, ref: str = "openai-key", **spec: Any) -> Any:
    return endpoint(
        "local",
        provider="openai-compatible",
        base_url=server.url + "/v1",
        auth={"secretRef": ref},
        **spec,
    )


async def test_the_sealed_value_is_the_bearer_token(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body=completion({"content": "ok"})))
    provider = make_provider(
        compatible(fake_server), sealed("openai-key", {"value": PLAIN}), sealing_key=KEY
    )
    try:
        reply = await provider.complete(request())
    finally:
        await provider.aclose()
    assert reply.content == "ok"
    assert fake_server.requests[0].headers["authorization"] == f"Bearer {PLAIN}"


async def test_a_named_key_and_a_namespaced_ref(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body=completion({"content": "ok"})))
    secret = sealed("tokens", {"value": "not-this-one", "api": PLAIN + "\n"})
    provider = make_provider(compatible(fake_server, "team/tokens:api"), secret, sealing_key=KEY)
    try:
        await provider.complete(request())
    finally:
        await provider.aclose()
    assert fake_server.requests[0].headers["authorization"] == f"Bearer {PLAIN}"


async def test_anthropic_sends_it_as_its_api_key(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body=message([{"type": "text", "text": "ok"}])))
    ep = endpoint(
        "claude",
        provider="anthropic",
        base_url=fake_server.url,
        default_model="claude-sonnet-4-6",
        auth={"secretRef": "anthropic-key"},
    )
    provider = make_provider(ep, sealed("anthropic-key", {"value": PLAIN}), sealing_key=KEY)
    try:
        await provider.complete(request())
    finally:
        await provider.aclose()
    headers = fake_server.requests[0].headers
    # the SDK sends the key as x-api-key or as a bearer token, depending on its version
    assert PLAIN in (headers.get("x-api-key", ""), headers.get("authorization", "")[7:])


@pytest.mark.parametrize(
    ("secret", "sealing_key", "expected"),
    [
        (None, KEY, "Secret/openai-key is not applied; apply it with `podium apply`"),
        (
            sealed("openai-key", {"value": PLAIN}),
            None,
            "this actor has no sealing key to open Secret/openai-key with; the operator sets "
            "PODIUM_ACTOR_SEALING_KEY",
        ),
        (sealed("openai-key", {"value": PLAIN}), new_private_key(), "is sealed to the sealing"),
        (sealed("openai-key", {"other": PLAIN}), KEY, "Secret/openai-key has no key 'value'"),
        (sealed("openai-key", {"value": " \t"}), KEY, "the value is empty"),
    ],
)
async def test_a_key_that_cannot_be_had_fails_the_call(
    fake_server: FakeHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    secret: Secret | None,
    sealing_key: X25519PrivateKey | None,
    expected: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-vendor-fallback-must-not-be-used")
    fake_server.queue(Reply(body=completion({"content": "ok"})))
    for ep in (
        compatible(fake_server),
        endpoint("gpt", provider="openai", auth={"secretRef": "openai-key"}),
    ):
        provider = make_provider(ep, secret, sealing_key=sealing_key)
        with pytest.raises(PermanentModelError) as raised:
            await provider.complete(request())
        await provider.aclose()
        assert f"ModelEndpoint/{ep.metadata.name}: auth.secretRef 'openai-key'" in str(raised.value)
        assert expected in str(raised.value)
        assert PLAIN not in str(raised.value)
    assert fake_server.requests == []  # never sent without the key, nor with another


async def test_a_value_moved_into_another_secret_does_not_open(fake_server: FakeHTTPServer) -> None:
    original = sealed("openai-key", {"value": PLAIN})
    moved = Secret.model_validate(
        {**original.model_dump(by_alias=True), "metadata": {"name": "mine"}}
    )
    provider = make_provider(compatible(fake_server, "mine"), moved, sealing_key=KEY)
    with pytest.raises(PermanentModelError, match="sealed for another secret or key"):
        await provider.complete(request())
    await provider.aclose()
    assert fake_server.requests == []


async def test_a_vendor_echoing_the_key_is_masked(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(
        Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {PLAIN}"}})
    )
    provider = make_provider(
        compatible(fake_server), sealed("openai-key", {"value": PLAIN}), sealing_key=KEY
    )
    with pytest.raises(PermanentModelError) as raised:
        await provider.complete(request())
    await provider.aclose()
    assert "HTTP 401" in str(raised.value) and "***" in str(raised.value)
    assert PLAIN not in str(raised.value) and raised.value.__cause__ is None


async def test_the_mock_opens_its_secret_too() -> None:
    ep = endpoint("offline", provider="mock", auth={"secretRef": "openai-key"})
    good = make_provider(ep, sealed("openai-key", {"value": PLAIN}), sealing_key=KEY)
    assert (await good.complete(request())).content.startswith("a: hi")
    broken = make_provider(ep, None, sealing_key=KEY)
    with pytest.raises(PermanentModelError, match="Secret/openai-key is not applied"):
        await broken.complete(request())
