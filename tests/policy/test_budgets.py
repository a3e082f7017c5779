"""Batched budget reservations (`BudgetStore.reserve_many`) on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from policy_service.budgets import BudgetStore
from policy_service.reservation import BudgetRequest
from policy_service.rules import BudgetCap

pytestmark = pytest.mark.integration

TOKENS = BudgetCap(policy="cost-guard", max_tokens=1000, max_usd=None)
USD = BudgetCap(policy="usd-guard", max_tokens=None, max_usd=1.0)


@pytest.fixture
async def store(database_url: str, pg_schema: str) -> AsyncIterator[BudgetStore]:
    budgets = await BudgetStore.connect(database_url, schema=pg_schema)
    try:
        yield budgets
    finally:
        await budgets.close()


def ask(
    task_id: str, tokens: int, usd: float = 0.0, caps: tuple[BudgetCap, ...] = (TOKENS,)
) -> BudgetRequest:
    return BudgetRequest(
        request_id=f"req-{uuid.uuid4().hex[:12]}",
        task_id=task_id,
        caps=caps,
        tokens=tokens,
        usd=usd,
    )


async def test_a_batch_mixing_tasks_is_applied_in_order_each_request_all_or_nothing(
    store: BudgetStore,
) -> None:
    a, b, c = (f"task-{x}-{uuid.uuid4().hex[:6]}" for x in "abc")
    both = (USD, TOKENS)  # not in policy order: the store sorts them
    batch = [
        ask(a, 600),  # 0: A 600/1000
        ask(b, 900),  # 1: B 900/1000
        ask(a, 600),  # 2: A would reach 1200: refused, A stays at 600
        ask(c, 100, 1.5, both),  # 3: fits the tokens, crosses the USD cap: refused on both
        ask(a, 400),  # 4: A exactly at its cap: allowed
        ask(c, 100, 0.5, both),  # 5: C 100 tokens, $0.50
        ask(b, 100),  # 6: B exactly at its cap
        ask(b, 0),  # 7: B's cap is reached: even a call estimated at zero is refused
        ask(c, 900, 0.5, both),  # 8: C reaches both caps exactly
    ]
    results = await store.reserve_many(batch)

    assert [r.ok for r in results] == [True, True, False, False, True, True, True, False, True]
    refused_a, refused_c, refused_b = results[2], results[3], results[7]
    assert (refused_a.cap, refused_a.rule, refused_a.used_tokens) == (
        TOKENS,
        "max_tokens_per_task",
        600,
    )
    assert "600 of its 1000 tokens" in refused_a.reason
    assert (refused_c.cap, refused_c.rule, refused_c.used_usd) == (
        USD,
        "max_cost_per_task_usd",
        0.0,
    )
    assert (refused_b.cap, refused_b.used_tokens) == (TOKENS, 1000)
    assert await store.usage(a) == {"cost-guard": (1000, 0.0)}
    assert await store.usage(b) == {"cost-guard": (1000, 0.0)}
    assert await store.usage(c) == {"cost-guard": (1000, 1.0), "usd-guard": (1000, 1.0)}


async def test_reservations_are_idempotent_on_the_request_id(store: BudgetStore) -> None:
    t = f"task-{uuid.uuid4().hex[:6]}"
    first, second = ask(t, 700), ask(t, 400)
    # The same request twice in one batch counts once.
    assert [r.ok for r in await store.reserve_many([first, first, second])] == [True, True, False]
    # Redelivered later (a rebalance): still allowed, still counted once; the refused one is
    # decided again on what is used now.
    assert [r.ok for r in await store.reserve_many([second, first])] == [False, True]
    assert await store.usage(t) == {"cost-guard": (700, 0.0)}
    assert await store.reserve_many([]) == []


async def test_two_replicas_batching_the_same_tasks_in_opposite_orders_never_overrun(
    database_url: str, pg_schema: str, store: BudgetStore
) -> None:
    """Each batch locks its rows in one global order: no deadlock, and every cap holds."""
    other = await BudgetStore.connect(database_url, schema=pg_schema)
    tasks = [f"task-{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    try:

        async def replica(budgets: BudgetStore, order: list[str]) -> list[tuple[str, bool]]:
            decided: list[tuple[str, bool]] = []
            for _ in range(10):
                batch = [ask(t, 100) for t in order]
                results = await budgets.reserve_many(batch)
                decided.extend((r.task_id, res.ok) for r, res in zip(batch, results, strict=True))
            return decided

        decided = await asyncio.gather(
            replica(store, tasks),
            replica(other, tasks[::-1]),
            replica(store, tasks[1:] + tasks[:1]),
        )
    finally:
        await other.close()
    allowed = [t for outcome in decided for t, ok in outcome if ok]
    for t in tasks:
        assert allowed.count(t) == 10  # 30 requests of 100 against a cap of 1000
        assert await store.usage(t) == {"cost-guard": (1000, 0.0)}
