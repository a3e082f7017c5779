"""`provider: in-memory`: entries in the actor process, lost when it stops. Search is Orloj's:
a case-insensitive substring of the key or the value, every hit scored 1.0, by key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from actors.memory.base import MemoryEntry


class InMemoryStore:
    """Implements `MemoryStore` with a dict (one per Memory and actor process)."""

    def __init__(self) -> None:
        self._entries: dict[str, MemoryEntry] = {}

    async def put(self, key: str, value: str, metadata: dict[str, Any]) -> None:
        self._entries[key] = MemoryEntry(
            key=key, value=value, metadata=dict(metadata), updated_at=datetime.now(UTC)
        )

    async def get(self, key: str) -> MemoryEntry | None:
        return self._entries.get(key)

    async def search(self, query: str, top_k: int) -> list[MemoryEntry]:
        needle = query.lower()
        hits = [
            MemoryEntry(key=e.key, value=e.value, metadata=e.metadata, score=1.0)
            for e in self._entries.values()
            if needle in e.key.lower() or needle in e.value.lower()
        ]
        return sorted(hits, key=lambda e: e.key)[:top_k]

    async def list(self, prefix: str, limit: int) -> list[MemoryEntry]:
        keys = sorted(k for k in self._entries if k.startswith(prefix))
        return [self._entries[k] for k in keys[:limit]]

    async def aclose(self) -> None:
        return None
