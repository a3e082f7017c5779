"""The seam between the memory tools and a store: `MemoryStore`, and what it returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from msgspec import Struct

from podium.core.errors import PermanentError

DEFAULT_TOP_K = 10
"""Orloj's default number of search results."""
DEFAULT_LIST_LIMIT = 100
MAX_LIMIT = 1000


class MemoryStoreError(PermanentError):
    """A store refused an operation or cannot be used (its message is safe for the model)."""


class MemoryEntry(Struct, frozen=True, kw_only=True):
    key: str
    value: str
    metadata: dict[str, Any] = {}
    updated_at: datetime | None = None
    score: float | None = None
    """Search only: higher is closer (keyword rank, or 1 - cosine distance)."""

    def for_model(self) -> dict[str, Any]:
        """Orloj's shape: key, value, and score on search results."""
        out: dict[str, Any] = {"key": self.key, "value": self.value}
        if self.score is not None:
            out["score"] = round(self.score, 6)
        return out


class MemoryStore(Protocol):
    """One Memory's entries. Keys are unique; `put` replaces the entry of its key."""

    async def put(self, key: str, value: str, metadata: dict[str, Any]) -> None: ...

    async def get(self, key: str) -> MemoryEntry | None: ...

    async def search(self, query: str, top_k: int) -> list[MemoryEntry]: ...

    async def list(self, prefix: str, limit: int) -> list[MemoryEntry]: ...

    async def aclose(self) -> None: ...
