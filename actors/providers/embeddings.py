"""Embeddings from a `ModelEndpoint` (a Memory's `embedding_model`): the OpenAI-compatible
`/embeddings` API through the openai SDK (`openai`, `openai-compatible`; the endpoint's
`base_url`, key and `default_model`), or, for `mock`, an offline, deterministic embedding of the
words (a hashed bag of words), so that demos and tests need no network."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Protocol

import openai
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.providers._translate import translate_sdk_error
from actors.providers.endpoint import Endpoint, check_secret_env
from actors.providers.errors import PermanentModelError
from actors.providers.keys import ApiKey, EnvKey, NoKey, SealedKey, masked
from actors.settings import DEFAULT_ALLOWED_SECRET_ENV
from manifests.models import Secret

MOCK_DIMENSIONS = 64
_WORD = re.compile(r"\w+")


class Embedder(Protocol):
    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


class MockEmbedder:
    """Each word adds 1 to the dimension its hash picks; the vector is normalised (texts that
    share words are close in cosine distance)."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for text in texts:
            vector = [0.0] * MOCK_DIMENSIONS
            for word in _WORD.findall(text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                vector[int.from_bytes(digest[:4], "big") % MOCK_DIMENSIONS] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out

    async def aclose(self) -> None:
        return None


class OpenAIEmbedder:
    """`embeddings.create` of an OpenAI-compatible server; no SDK retries (the caller decides)."""

    def __init__(
        self, *, name: str, base_url: str | None, api_key: ApiKey, model: str, where: str
    ) -> None:
        self._name = name
        self._base_url = base_url
        self._api_key = api_key
        self._model = model
        self._where = where
        self._key = ""
        self._client: openai.AsyncOpenAI | None = None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._client is None:
            self._key = self._api_key.value()
            self._client = openai.AsyncOpenAI(
                api_key=self._key, base_url=self._base_url, max_retries=0
            )
        try:
            reply = await self._client.embeddings.create(model=self._model, input=list(texts))
        except Exception as exc:
            error = translate_sdk_error(
                self._name,
                exc,
                status_error=openai.APIStatusError,
                timeout_error=openai.APITimeoutError,
                connection_error=openai.APIConnectionError,
            )
            raise masked(error, self._key) if self._key else error from None
        vectors = sorted(reply.data, key=lambda d: d.index)
        if len(vectors) != len(texts) or any(not v.embedding for v in vectors):
            raise PermanentModelError(
                f"{self._where}: the embeddings reply has {len(vectors)} vectors for "
                f"{len(texts)} texts",
                provider=self._name,
            )
        return [list(v.embedding) for v in vectors]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def make_embedder(
    endpoint: Endpoint,
    secret: Secret | None = None,
    *,
    allowed_secret_env: Sequence[str] = DEFAULT_ALLOWED_SECRET_ENV,
    sealing_key: X25519PrivateKey | None = None,
) -> Embedder:
    """The embedder of an endpoint; its key is read at the first call, as for chat."""
    spec = endpoint.spec
    where = f"ModelEndpoint/{endpoint.metadata.name}"
    if spec.provider == "mock":
        return MockEmbedder()
    if spec.provider not in ("openai", "openai-compatible"):
        raise PermanentModelError(
            f"{where}: provider {spec.provider} has no embeddings API (use openai, "
            "openai-compatible or mock)"
        )
    if not spec.default_model:
        raise PermanentModelError(f"{where}: no `default_model` to embed with")
    if spec.provider == "openai-compatible" and not spec.base_url:
        raise PermanentModelError(f"{where}: provider openai-compatible needs spec.base_url")
    if spec.api_key_env:
        check_secret_env(spec.api_key_env, allowed_secret_env, where=where)
    key: ApiKey
    if spec.auth is not None:
        key = SealedKey(spec.provider, where, spec.auth.secret_ref, secret, sealing_key)
    elif spec.api_key_env or spec.provider == "openai":
        key = EnvKey(spec.provider, spec.api_key_env or "OPENAI_API_KEY")
    else:
        key = NoKey()
    base_url = str(spec.base_url) if spec.base_url else None
    return OpenAIEmbedder(
        name=spec.provider, base_url=base_url, api_key=key, model=spec.default_model, where=where
    )
