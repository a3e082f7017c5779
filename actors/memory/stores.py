"""`MemoryStores`: the store of each applied Memory, made at first use and kept while its
definition (the Memory, its Secret, its embedding endpoint) stays the same; in-memory entries
therefore live as long as the actor process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.memory.base import MemoryStore, MemoryStoreError
from actors.memory.http import HttpMemoryStore
from actors.memory.in_memory import InMemoryStore
from actors.memory.postgres import PostgresMemoryStore
from actors.providers.embeddings import make_embedder
from actors.providers.errors import PermanentModelError
from actors.settings import DEFAULT_ALLOWED_SECRET_ENV, SEALING_KEY_SETTING
from manifests.catalog import Catalog
from manifests.models import Memory
from manifests.sealing import SealingError, open_text

DATABASE_SETTING = "PODIUM_ACTOR_MEMORY_DATABASE_URL"


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """What the operator decides for memory stores (`actors.settings.ActorSettings`)."""

    database_url: str | None = None
    """The DSN of postgres Memories that name no `endpoint`."""
    schema: str = "podium_memory"
    sealing_key: X25519PrivateKey | None = None
    allowed_secret_env: Sequence[str] = DEFAULT_ALLOWED_SECRET_ENV


class MemoryStores:
    def __init__(self, config: MemoryConfig | None = None) -> None:
        self._config = config or MemoryConfig()
        self._stores: dict[str, tuple[bytes, MemoryStore]] = {}
        self._retired: list[MemoryStore] = []

    def store_for(self, catalog: Catalog, memory: Memory) -> MemoryStore:
        """Raises `MemoryStoreError` when the Memory cannot be used (its message says why)."""
        fingerprint = self._fingerprint(catalog, memory)
        known = self._stores.get(memory.name)
        if known is not None and known[0] == fingerprint:
            return known[1]
        store = self._make(catalog, memory)
        if known is not None:
            self._retired.append(known[1])  # a call may still run on it: closed at aclose
        self._stores[memory.name] = (fingerprint, store)
        return store

    async def aclose(self) -> None:
        stores = [s for _, s in self._stores.values()] + self._retired
        self._stores.clear()
        self._retired.clear()
        for store in stores:
            await store.aclose()

    def _fingerprint(self, catalog: Catalog, memory: Memory) -> bytes:
        parts: list[object] = [memory.model_dump(mode="json")]
        if memory.spec.auth is not None:
            secret = catalog.secrets.get(memory.spec.auth.secret_name)
            parts.append(secret.model_dump(mode="json") if secret else None)
        name = memory.spec.embedding_endpoint
        if name is not None:
            endpoint = catalog.endpoints.get(name)
            parts.append(endpoint.model_dump(mode="json") if endpoint else None)
            secret = catalog.secret_for(endpoint) if endpoint else None
            parts.append(secret.model_dump(mode="json") if secret else None)
        return msgspec.json.encode(parts)

    def _secret(self, catalog: Catalog, memory: Memory) -> str | None:
        auth = memory.spec.auth
        if auth is None:
            return None
        try:
            return open_text(
                catalog.secrets.get(auth.secret_name),
                auth.secret_name,
                auth.secret_key,
                self._config.sealing_key,
                holder="this actor",
                key_setting=SEALING_KEY_SETTING,
            )
        except SealingError as exc:
            raise MemoryStoreError(
                f"Memory/{memory.name}: auth.secretRef {auth.secret_ref!r}: {exc}"
            ) from None

    def _make(self, catalog: Catalog, memory: Memory) -> MemoryStore:
        spec = memory.spec
        if spec.provider == "in-memory":
            return InMemoryStore()
        if spec.provider == "http":
            assert spec.endpoint is not None  # validation
            return HttpMemoryStore(
                memory=memory.name, endpoint=spec.endpoint, token=self._secret(catalog, memory)
            )
        dsn = spec.endpoint or self._config.database_url
        if not dsn:
            raise MemoryStoreError(
                f"Memory/{memory.name}: provider {spec.provider} names no `endpoint` and this "
                f"actor has no {DATABASE_SETTING}; set one of them"
            )
        password = self._secret(catalog, memory)
        if password is not None and urlsplit(dsn).password:
            password = None  # Orloj: the Secret fills in a DSN without a password only
        embedder = None
        name = spec.embedding_endpoint
        if name is not None:
            endpoint = catalog.endpoints.get(name)
            if endpoint is None:
                raise MemoryStoreError(
                    f"Memory/{memory.name}: embedding_model ModelEndpoint/{name} is not applied"
                )
            try:
                embedder = make_embedder(
                    endpoint,
                    catalog.secret_for(endpoint),
                    allowed_secret_env=self._config.allowed_secret_env,
                    sealing_key=self._config.sealing_key,
                )
            except PermanentModelError as exc:
                raise MemoryStoreError(f"Memory/{memory.name}: {exc}") from None
        return PostgresMemoryStore(
            memory=memory.name,
            dsn=dsn,
            schema=self._config.schema,
            password=password,
            embedder=embedder,
        )
