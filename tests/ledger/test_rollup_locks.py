"""Concurrent batches that share rollup rows never deadlock: the rows are locked in one order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from ledger.plan import BatchPlan, SpendDelta, SpendKey
from ledger.store import _upsert_spend

KEYS = 5000
"""Enough rows that two statements started together overlap while they take their locks."""
ROUNDS = 3


def plan(keys: list[SpendKey]) -> BatchPlan:
    return BatchPlan(spend={key: SpendDelta(calls=1, input_tokens=10) for key in keys})


async def test_batches_with_shared_spend_rows_in_opposite_orders_do_not_deadlock(
    ledger_pool: asyncpg.Pool,
) -> None:
    hour = datetime(2026, 1, 1, tzinfo=UTC)
    keys: list[SpendKey] = [
        (hour + timedelta(hours=i), "sys", f"agent-{i}", "model") for i in range(KEYS)
    ]
    async with ledger_pool.acquire() as conn:
        await _upsert_spend(conn, plan(keys))  # the rows exist: every upsert takes row locks

    async def batch(order: list[SpendKey], start: asyncio.Barrier) -> None:
        async with ledger_pool.acquire() as conn, conn.transaction():
            await start.wait()
            await _upsert_spend(conn, plan(order))

    for _ in range(ROUNDS):
        start = asyncio.Barrier(2)
        await asyncio.wait_for(asyncio.gather(batch(keys, start), batch(keys[::-1], start)), 120)
    async with ledger_pool.acquire() as conn:
        calls = await conn.fetchval("SELECT sum(calls) FROM spend_hourly WHERE system = 'sys'")
    assert calls == KEYS * (1 + 2 * ROUNDS)
