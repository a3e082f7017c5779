"""A round trip through the real PostgreSQL cluster with asyncpg, in a schema of its own."""

from __future__ import annotations

import json

import asyncpg
import pytest

pytestmark = pytest.mark.integration


async def test_asyncpg_round_trip_in_the_test_schema(pg_pool: asyncpg.Pool, pg_schema: str) -> None:
    async with pg_pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_schema()") == pg_schema
        await conn.execute(
            "CREATE TABLE tasks (task_id text PRIMARY KEY, system text NOT NULL, input jsonb)"
        )
        await conn.executemany(
            "INSERT INTO tasks VALUES ($1, $2, $3)",
            [("t-1", "research", json.dumps({"q": "a"})), ("t-2", "research", '"text"')],
        )
        rows = await conn.fetch("SELECT task_id, input FROM tasks ORDER BY task_id")
        assert [(r["task_id"], json.loads(r["input"])) for r in rows] == [
            ("t-1", {"q": "a"}),
            ("t-2", "text"),
        ]
        where = await conn.fetchval(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'tasks' "
            "AND table_schema = $1",
            pg_schema,
        )
        assert where == pg_schema
