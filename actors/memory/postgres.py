"""`provider: postgres` (and Orloj's `pgvector`): a Memory's entries in PostgreSQL, in the table
`<schema>.entries` keyed by (memory, key), with their metadata and times.

Keyword search is PostgreSQL's full-text search (`english` configuration over key and value;
any of the query's words matches, ranked by `ts_rank_cd`). With an embedder (`embedding_model`)
every write stores the value's embedding and search is by cosine similarity, which needs the
pgvector extension: where it is not installed the store refuses, naming the fix, and never
falls back to keywords. The connection is the actor's own (a DSN from the Memory's `endpoint`
or the actor's `PODIUM_ACTOR_MEMORY_DATABASE_URL`), not the ledger's."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from actors.memory.base import MemoryEntry, MemoryStoreError
from actors.providers.embeddings import Embedder
from podium.core.errors import TransientError

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_TABLE = """
CREATE TABLE IF NOT EXISTS {s}.entries (
    memory     text NOT NULL,
    key        text NOT NULL,
    value      text NOT NULL,
    metadata   jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    search     tsvector GENERATED ALWAYS AS (
        to_tsvector('english', key || ' ' || value)) STORED,
    PRIMARY KEY (memory, key)
);
CREATE INDEX IF NOT EXISTS entries_search ON {s}.entries USING gin (search);
"""

_UPSERT = """
INSERT INTO {s}.entries (memory, key, value, metadata{vc}) VALUES ($1, $2, $3, $4::jsonb{vv})
ON CONFLICT (memory, key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata,
    updated_at = now(){vu}
"""

_KEYWORDS = """
SELECT key, value, metadata, updated_at, ts_rank_cd(search, q) AS score
FROM {s}.entries, replace(plainto_tsquery('english', $2)::text, '&', '|') AS t,
     CAST(nullif(t, '') AS tsquery) AS q
WHERE memory = $1 AND search @@ q
ORDER BY score DESC, key LIMIT $3
"""

_VECTORS = """
SELECT key, value, metadata, updated_at, 1 - (embedding <=> $2::vector) AS score
FROM {s}.entries WHERE memory = $1 AND embedding IS NOT NULL
ORDER BY embedding <=> $2::vector, key LIMIT $3
"""


def where(dsn: str) -> str:
    """`host:port/db` of a DSN, never its password."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


class PostgresMemoryStore:
    """Implements `MemoryStore` for one Memory; connects (and makes its table) at first use."""

    def __init__(
        self,
        *,
        memory: str,
        dsn: str,
        schema: str = "podium_memory",
        password: str | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        if not _SCHEMA.match(schema):
            raise MemoryStoreError(f"memory schema {schema!r} is not a plain lower-case name")
        self._memory = memory
        self._dsn = dsn
        self._password = password
        self._schema = schema
        self._embedder = embedder
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def vector(self) -> bool:
        return self._embedder is not None

    async def _connect(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is not None:
                return self._pool
            try:
                pool = await asyncpg.create_pool(
                    self._dsn, password=self._password, min_size=0, max_size=4, timeout=10
                )
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                raise TransientError(
                    f"Memory/{self._memory}: cannot connect to PostgreSQL at {where(self._dsn)}: "
                    f"{type(exc).__name__}"
                ) from None
            try:
                await self._prepare(pool)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
            return pool

    async def _prepare(self, pool: asyncpg.Pool) -> None:
        s = self._schema
        async with pool.acquire() as conn:
            if self.vector:
                available = await conn.fetchval(
                    "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
                )
                if not available:
                    raise MemoryStoreError(
                        f"Memory/{self._memory}: vector search (embedding_model) needs the "
                        f"pgvector extension, which PostgreSQL at {where(self._dsn)} does not "
                        "have; install it (Debian: postgresql-<version>-pgvector), or remove "
                        "`embedding_model` and use provider postgres for keyword search"
                    )
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            # Several actors may prepare at once: one transaction-scoped lock serialises the DDL.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('podium_memory_ddl'))")
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                await conn.execute(_TABLE.format(s=s))
                if self.vector:
                    await conn.execute(
                        f"ALTER TABLE {s}.entries ADD COLUMN IF NOT EXISTS embedding vector"
                    )

    async def _embed(self, text: str) -> str:
        assert self._embedder is not None
        [vector] = await self._embedder.embed([text])
        return "[" + ",".join(repr(float(v)) for v in vector) + "]"

    async def put(self, key: str, value: str, metadata: dict[str, Any]) -> None:
        pool = await self._connect()
        args: list[Any] = [self._memory, key, value, json.dumps(metadata)]
        vc = vv = vu = ""
        if self.vector:
            args.append(await self._embed(value))
            vc, vv, vu = ", embedding", ", $5::vector", ", embedding = excluded.embedding"
        await self._run(pool, "execute", _UPSERT.format(s=self._schema, vc=vc, vv=vv, vu=vu), args)

    async def get(self, key: str) -> MemoryEntry | None:
        pool = await self._connect()
        rows = await self._run(
            pool,
            "fetch",
            f"SELECT key, value, metadata, updated_at FROM {self._schema}.entries "
            "WHERE memory = $1 AND key = $2",
            [self._memory, key],
        )
        return _entry(rows[0]) if rows else None

    async def search(self, query: str, top_k: int) -> list[MemoryEntry]:
        pool = await self._connect()
        if self.vector:
            sql, probe = _VECTORS, await self._embed(query)
        else:
            sql, probe = _KEYWORDS, query
        rows = await self._run(
            pool, "fetch", sql.format(s=self._schema), [self._memory, probe, top_k]
        )
        return [_entry(row, scored=True) for row in rows]

    async def list(self, prefix: str, limit: int) -> list[MemoryEntry]:
        pool = await self._connect()
        rows = await self._run(
            pool,
            "fetch",
            f"SELECT key, value, metadata, updated_at FROM {self._schema}.entries "
            "WHERE memory = $1 AND starts_with(key, $2) ORDER BY key LIMIT $3",
            [self._memory, prefix, limit],
        )
        return [_entry(row) for row in rows]

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._embedder is not None:
            await self._embedder.aclose()

    async def _run(self, pool: asyncpg.Pool, method: str, sql: str, args: Sequence[Any]) -> Any:
        try:
            return await getattr(pool, method)(sql, *args)
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError) as exc:
            raise TransientError(
                f"Memory/{self._memory}: PostgreSQL at {where(self._dsn)}: {type(exc).__name__}"
            ) from None


def _entry(row: asyncpg.Record, *, scored: bool = False) -> MemoryEntry:
    metadata = row["metadata"]
    return MemoryEntry(
        key=row["key"],
        value=row["value"],
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata or {}),
        updated_at=row["updated_at"],
        score=float(row["score"]) if scored else None,
    )
