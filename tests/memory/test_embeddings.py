"""Embeddings from a ModelEndpoint: the openai SDK against a local fake server (the endpoint's
model and key, no retries), and the offline mock."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from actors.providers.embeddings import MockEmbedder, make_embedder
from actors.providers.errors import PermanentModelError, TransientModelError
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply


@pytest.fixture
def server() -> Iterator[FakeHTTPServer]:
    fake = FakeHTTPServer().start()
    try:
        yield fake
    finally:
        fake.stop()


def embeddings_reply(*vectors: list[float]) -> Reply:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return Reply(
        body={
            "object": "list",
            "data": list(reversed(data)),  # out of order: the index puts them back
            "model": "emb-1",
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        }
    )


async def test_an_openai_compatible_endpoint_embeds_with_its_model_and_key(
    server: FakeHTTPServer,
) -> None:
    server.queue(embeddings_reply([0.1, 0.2], [0.3, 0.4]))
    embedder = make_embedder(
        endpoint(
            provider="openai-compatible",
            base_url=server.url + "/v1",
            default_model="emb-1",
            api_key_env="OPENAI_API_KEY",
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-emb-3Fg")
        try:
            vectors = await embedder.embed(["first", "second"])
        finally:
            await embedder.aclose()
    assert vectors == [[0.1, 0.2], [0.3, 0.4]]
    [request] = server.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-emb-3Fg"
    body = request.json()
    assert body["model"] == "emb-1" and body["input"] == ["first", "second"]


async def test_a_failing_embeddings_call_is_not_retried_by_the_sdk(server: FakeHTTPServer) -> None:
    server.queue(Reply(status=503, body={"error": {"message": "busy"}}))
    embedder = make_embedder(
        endpoint(provider="openai-compatible", base_url=server.url + "/v1", default_model="e")
    )
    try:
        with pytest.raises(TransientModelError):
            await embedder.embed(["x"])
    finally:
        await embedder.aclose()
    assert len(server.requests) == 1


def test_an_endpoint_without_embeddings_is_refused() -> None:
    with pytest.raises(PermanentModelError, match="has no embeddings API"):
        make_embedder(endpoint(provider="anthropic", default_model="claude"))


async def test_the_mock_embeds_offline_and_deterministically() -> None:
    embedder = make_embedder(endpoint(provider="mock", default_model="mock-1"))
    assert isinstance(embedder, MockEmbedder)
    a, b, c = await embedder.embed(["quarterly revenue", "Revenue, quarterly!", "zebra"])
    assert a == b and math.isclose(sum(v * v for v in a), 1.0)
    assert sum(x * y for x, y in zip(a, c, strict=True)) < 0.99
