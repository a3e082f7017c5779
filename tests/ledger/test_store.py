"""Storage on real PostgreSQL: idempotence, hash chains, tamper detection, rollups."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import pytest

from ledger.audit import verify
from ledger.migrate import available, migrate
from ledger.plan import incoming
from ledger.store import WRITER_ROLE, write_batch
from tests.ledger.conftest import task_events
from topics.messages import Event

pytestmark = pytest.mark.integration


async def test_second_start_applies_no_migration(database_url: str, pg_schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await migrate(conn, pg_schema) == [m.version for m in available()]
        assert await migrate(conn, pg_schema) == []
    finally:
        await conn.close()


async def test_redelivered_events_are_stored_once(
    ledger_pool: asyncpg.Pool, pg_schema: str
) -> None:
    events = [incoming(e) for e in task_events("t-redeliver")]
    async with ledger_pool.acquire() as conn:
        first = await write_batch(conn, pg_schema, events[:7])
        # A redelivery overlaps the first batch, repeats an event inside itself, and goes on.
        again = await write_batch(conn, pg_schema, events[3:] + events[5:6])
        assert (first.stored, again.stored, again.duplicates) == (7, len(events) - 7, 5)
        count = await conn.fetchval("SELECT count(*) FROM events")
        seqs = await conn.fetch(
            "SELECT seq FROM events WHERE task_id = $1 ORDER BY seq", "t-redeliver"
        )
        task = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = 't-redeliver'")
        report = await verify(conn)
    assert count == len(events)
    assert [r["seq"] for r in seqs] == list(range(1, len(events) + 1))
    assert task["model_calls"] == 2 and task["events"] == len(events)
    assert task["status"] == "succeeded" and task["output"] == "final answer"
    assert report.ok and report.events == len(events)


async def test_unknown_event_type_is_stored_as_is(
    ledger_pool: asyncpg.Pool, pg_schema: str
) -> None:
    future = Event(
        event_id="f1",
        type="robot.danced",
        task_id="t-future",
        data={"moves": [1, 2], "style": "waltz"},
    )
    async with ledger_pool.acquire() as conn:
        await write_batch(conn, pg_schema, [incoming(future)])
        row = await conn.fetchrow("SELECT type, data::text AS data, body FROM events")
    assert row["type"] == "robot.danced"
    assert msgspec.json.decode(row["data"]) == {"moves": [1, 2], "style": "waltz"}
    assert msgspec.json.decode(row["body"], type=Event).data == future.data


async def test_events_table_rejects_update_and_delete(
    ledger_pool: asyncpg.Pool, pg_schema: str
) -> None:
    async with ledger_pool.acquire() as conn:
        await write_batch(conn, pg_schema, [incoming(e) for e in task_events("t-ro")])
        assert await conn.fetchval("SELECT current_user") == WRITER_ROLE
        # The ledger's own connections may not change events at all ...
        for sql in ("UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.execute(sql)
        # ... and the tables' owner is stopped by the append-only trigger.
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE NONE")
            for sql in ("UPDATE events SET type = 'x'", "DELETE FROM events", "TRUNCATE events"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    async with conn.transaction():
                        await conn.execute(sql)


async def _tamper(conn: asyncpg.Connection, sql: str, *args: object) -> None:
    """What an administrator who switches triggers off could do."""
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE NONE")
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def test_tampered_row_is_found_by_verify(ledger_pool: asyncpg.Pool, pg_schema: str) -> None:
    async with ledger_pool.acquire() as conn:
        await write_batch(conn, pg_schema, [incoming(e) for e in task_events("t-a")])
        await write_batch(conn, pg_schema, [incoming(e) for e in task_events("t-b")])
        assert (await verify(conn)).ok
        # The data column changed: the served value no longer matches the hashed event.
        await _tamper(
            conn,
            "UPDATE events SET data = jsonb_set(data, '{cost_usd}', '0') "
            "WHERE task_id = 't-a' AND seq = 5",
        )
        report = await verify(conn)
        assert [(b.task_id, b.seq) for b in report.breaks] == [("t-a", 5)]
        assert "data column" in report.breaks[0].problem
        # The body rewritten too (hash no longer matches).
        body = await conn.fetchval("SELECT body FROM events WHERE task_id='t-b' AND seq=3")
        await _tamper(
            conn,
            "UPDATE events SET body = $1 WHERE task_id = 't-b' AND seq = 3",
            body.replace('"allow"', '"deny"'),
        )
        report = await verify(conn, "t-b")
        assert [(b.task_id, b.seq) for b in report.breaks] == [("t-b", 3)]
        assert "hash" in report.breaks[0].problem


async def test_deleted_links_are_found_by_verify(ledger_pool: asyncpg.Pool, pg_schema: str) -> None:
    events = task_events("t-del")
    async with ledger_pool.acquire() as conn:
        await write_batch(conn, pg_schema, [incoming(e) for e in events])
        await _tamper(conn, "DELETE FROM events WHERE task_id = 't-del' AND seq = 4")
        report = await verify(conn, "t-del")
        assert [(b.seq, b.problem) for b in report.breaks] == [(4, "link 4 is missing")]
        await _tamper(conn, "DELETE FROM events WHERE task_id = 't-del' AND seq >= 4")
        report = await verify(conn, "t-del")
        assert report.breaks[0].seq == 4 and "removed" in report.breaks[0].problem


async def test_spend_rollups_equal_recomputation_from_raw_events(
    ledger_pool: asyncpg.Pool, pg_schema: str
) -> None:
    rng = random.Random(7)
    base = datetime(2025, 3, 1, tzinfo=UTC)
    everything: list[Event] = []
    for n in range(40):
        everything += task_events(
            f"t-spend-{n}",
            system=rng.choice(["research", "support"]),
            agents=tuple(rng.sample(["planner", "writer", "critic"], rng.randint(1, 3))),
            model=rng.choice(["gpt-4o-mini", "claude-3-5-haiku", "local-llama"]),
            cost=rng.choice([None, 0.000125, 0.0031, 1.5e-05, 0.1]),
            start=base + timedelta(minutes=rng.randint(0, 3 * 24 * 60)),
        )
    items = [incoming(e) for e in everything]
    async with ledger_pool.acquire() as conn:
        position = 0
        while position < len(items):  # uneven batches, each with some redelivered events
            size = rng.randint(1, 60)
            start = max(0, position - rng.randint(0, 5))
            await write_batch(conn, pg_schema, items[start : position + size])
            position += size
        rollup = await conn.fetch(
            "SELECT hour, system, agent, model, calls, unpriced_calls, input_tokens,"
            " output_tokens, cached_tokens, cost_usd FROM spend_hourly ORDER BY 1, 2, 3, 4"
        )
        recomputed = await conn.fetch(
            """
            SELECT date_trunc('hour', at) AS hour, system, agent, data->>'model' AS model,
                   count(*) AS calls, count(*) FILTER (WHERE data->'cost_usd' = 'null')
                   AS unpriced_calls, sum((data->>'input_tokens')::bigint) AS input_tokens,
                   sum((data->>'output_tokens')::bigint) AS output_tokens,
                   sum((data->>'cached_tokens')::bigint) AS cached_tokens,
                   coalesce(sum((data->>'cost_usd')::numeric), 0) AS cost_usd
            FROM events WHERE type = 'model.called' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """
        )
        task_totals = await conn.fetchval("SELECT sum(cost_usd) FROM tasks")
    assert [tuple(r) for r in rollup] == [tuple(r) for r in recomputed]
    expected = sum(
        (
            Decimal(repr(e.data["cost_usd"]))
            for e in everything
            if e.type == "model.called" and e.data["cost_usd"] is not None
        ),
        Decimal(0),
    )
    assert sum((r["cost_usd"] for r in rollup), Decimal(0)) == expected == task_totals


async def test_global_sequence_has_no_gaps_across_concurrent_writers(
    ledger_pool: asyncpg.Pool, pg_schema: str
) -> None:
    batches = [[incoming(e) for e in task_events(f"t-gseq-{n}")] for n in range(6)]

    async def write(batch: list[Any]) -> None:
        async with ledger_pool.acquire() as conn:
            await write_batch(conn, pg_schema, batch)

    async with asyncio.TaskGroup() as group:
        for batch in batches:
            group.create_task(write(batch))
    async with ledger_pool.acquire() as conn:
        # A batch refused whole (a NUL in an event) uses no sequence numbers.
        nul = task_events("t-gseq-nul")[0]
        bad = msgspec.structs.replace(nul, data={"input": "a\x00b"})
        with pytest.raises(asyncpg.PostgresError):
            await write_batch(conn, pg_schema, [incoming(bad)])
        await write_batch(conn, pg_schema, [incoming(e) for e in task_events("t-gseq-last")])
        gseqs = [r[0] for r in await conn.fetch("SELECT gseq FROM events ORDER BY gseq")]
        last = await conn.fetchval("SELECT last FROM ledger_sequence")
        per_task = await conn.fetch(
            "SELECT task_id, array_agg(gseq ORDER BY seq) AS g FROM events GROUP BY task_id"
        )
    assert gseqs == list(range(1, len(gseqs) + 1)) and last == len(gseqs)
    assert all(list(r["g"]) == sorted(r["g"]) for r in per_task)
