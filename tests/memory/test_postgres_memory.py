"""`provider: postgres` on the stack's PostgreSQL: entries with key, value, metadata and times;
keyword search by full-text search (any word, ranked); durable across store instances (an actor
restart); and vector search, which needs pgvector: refused, naming the fix, where the extension
is not installed. (The stack's PostgreSQL 15 has no pgvector and Debian's repositories here do
not carry it, so the vector path itself is not exercised by these tests.)"""

from __future__ import annotations

import asyncpg
import pytest

from actors.memory.base import MemoryStoreError
from actors.memory.postgres import PostgresMemoryStore
from actors.providers.embeddings import MockEmbedder

pytestmark = pytest.mark.integration


def store(database_url: str, schema: str, memory: str = "notes") -> PostgresMemoryStore:
    return PostgresMemoryStore(memory=memory, dsn=database_url, schema=schema)


async def test_entries_are_kept_searched_by_keyword_and_outlive_the_store(
    database_url: str, pg_schema: str
) -> None:
    first = store(database_url, pg_schema)
    try:
        await first.put("q3/revenue", "Quarterly revenue grew 12% on cloud sales", {"agent": "a"})
        await first.put("q3/costs", "Costs were flat; hiring paused", {"agent": "a"})
        await first.put("q3/revenue", "Quarterly revenue grew 14% on cloud sales", {"agent": "b"})
    finally:
        await first.aclose()
    # A new store (as after an actor restart) reads what the first one wrote.
    second = store(database_url, pg_schema)
    other = store(database_url, pg_schema, memory="other")
    try:
        entry = await second.get("q3/revenue")
        assert entry is not None
        assert entry.value == "Quarterly revenue grew 14% on cloud sales"
        assert entry.metadata == {"agent": "b"} and entry.updated_at is not None
        found = await second.search("cloud revenue", 5)
        assert [e.key for e in found] == ["q3/revenue"] and (found[0].score or 0) > 0
        # Any of the words matches; stemming finds "hiring" for "hires".
        assert {e.key for e in await second.search("hires revenue", 5)} == {
            "q3/revenue",
            "q3/costs",
        }
        assert await second.search("the of and", 5) == []  # stop words only: nothing
        assert [e.key for e in await second.list("q3/", 10)] == ["q3/costs", "q3/revenue"]
        assert [e.key for e in await second.list("q3/", 1)] == ["q3/costs"]
        # Memories share the table, never their entries.
        assert await other.get("q3/revenue") is None and await other.list("", 10) == []
    finally:
        await second.aclose()
        await other.aclose()


async def test_vector_search_without_pgvector_is_refused_with_the_fix(
    database_url: str, pg_schema: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
        )
    finally:
        await conn.close()
    if available:
        pytest.fail("this PostgreSQL has pgvector: this test checks the refusal where it has not")
    vectors = PostgresMemoryStore(
        memory="semantic", dsn=database_url, schema=pg_schema, embedder=MockEmbedder()
    )
    try:
        with pytest.raises(MemoryStoreError) as refused:
            await vectors.put("k", "v", {})
    finally:
        await vectors.aclose()
    message = str(refused.value)
    assert message.startswith(
        "Memory/semantic: vector search (embedding_model) needs the pgvector extension, which "
        "PostgreSQL at 127.0.0.1:"
    ), message
    assert "install it (Debian: postgresql-<version>-pgvector)" in message
    assert "use provider postgres for keyword search" in message
    assert "password" not in message and "@" not in message
