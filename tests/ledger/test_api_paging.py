"""Every list of the API comes in pages (a `limit` up to a maximum, a `next_cursor`): approvals
and spend as well as tasks, events and denials; the command line's client reads them all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from ledger.api import create_app
from ledger.auth import Scope, create_token
from ledger.client import LedgerClient
from ledger.plan import incoming
from ledger.store import write_batch
from tests.ledger.conftest import task_events

pytestmark = pytest.mark.integration

COSTS = [0.001, 0.002, 0.002, 0.003, None, 0.002, 0.001]
"""Per model call of each task (ties on purpose: the order breaks them by task id)."""


@pytest.fixture
async def seeded(ledger_pool: asyncpg.Pool, pg_schema: str) -> asyncpg.Pool:
    now = datetime.now(UTC)
    events = []
    for n, cost in enumerate(COSTS):
        events += task_events(f"t-page-{n}", cost=cost, start=now - timedelta(minutes=30 - n))
    async with ledger_pool.acquire() as conn:
        await write_batch(conn, pg_schema, [incoming(e) for e in events])
        requested = [now, now, None, now - timedelta(hours=1), None, now, now + timedelta(1)]
        for n, at in enumerate(requested):
            await conn.execute(
                "INSERT INTO approvals (approval_id, task_id, status, requested_at, arguments)"
                " VALUES ($1, $2, $3, $4, $5::jsonb)",
                f"ap-{n}",
                f"t-page-{n}",
                "pending" if n % 2 else "granted",
                at,
                json.dumps({"n": n}),
            )
    return ledger_pool


@pytest.fixture
async def token(seeded: asyncpg.Pool) -> str:
    async with seeded.acquire() as conn:
        return await create_token(conn, "pager", list(Scope))


@pytest.fixture
async def client(seeded: asyncpg.Pool, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(seeded))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://ledger",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        yield http


async def every_page(
    client: httpx.AsyncClient, path: str, key: str = "items", **params: Any
) -> tuple[list[Any], int]:
    """The items of every page, and how many pages there were."""
    items: list[Any] = []
    pages = 0
    cursor: str | None = None
    while True:
        response = await client.get(
            path, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page[key]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return items, pages


@pytest.mark.parametrize("status", [None, "pending", "granted"])
async def test_approvals_come_in_pages_in_the_order_of_one_big_page(
    client: httpx.AsyncClient, status: str | None
) -> None:
    where = {"status": status} if status else {}
    whole = (await client.get("/v1/approvals", params={**where, "limit": 1000})).json()
    assert whole["next_cursor"] is None
    expected = [a["approval_id"] for a in whole["items"]]
    assert len(expected) == {None: 7, "pending": 3, "granted": 4}[status]
    if status is None:
        assert sorted(expected[-2:]) == ["ap-2", "ap-4"], "no request time: last"
    for limit in (1, 2, 3):
        items, pages = await every_page(client, "/v1/approvals", limit=limit, **where)
        assert [a["approval_id"] for a in items] == expected, limit
        assert pages == max(1, -(-len(expected) // limit)), limit


@pytest.mark.parametrize("by", ["task", "system", "agent", "model", "day"])
async def test_spend_groups_come_in_pages_with_the_total_of_all(
    client: httpx.AsyncClient, by: str
) -> None:
    whole = (await client.get("/v1/spend", params={"group_by": by, "limit": 1000})).json()
    assert whole["next_cursor"] is None
    expected = [g["key"] for g in whole["groups"]]
    for limit in (1, 2, 3):
        first = (await client.get("/v1/spend", params={"group_by": by, "limit": limit})).json()
        assert first["total"] == whole["total"], "the total is of every group, not of the page"
        groups, _ = await every_page(client, "/v1/spend", "groups", group_by=by, limit=limit)
        assert [g["key"] for g in groups] == expected, (by, limit)
    if by == "task":
        assert len(expected) == len(COSTS)
        costs = [g["cost_usd"] for g in whole["groups"]]
        assert costs == sorted(costs, reverse=True)


async def test_spend_of_one_task_comes_in_pages(client: httpx.AsyncClient) -> None:
    groups, pages = await every_page(
        client, "/v1/spend", "groups", group_by="agent", task="t-page-3", limit=1
    )
    assert sorted(g["key"] for g in groups) == ["planner", "writer"] and pages == 2


@pytest.mark.parametrize(
    "path",
    [
        "/v1/approvals?limit=0",
        "/v1/approvals?limit=1001",
        "/v1/approvals?cursor=zzz",
        "/v1/spend?limit=0",
        "/v1/spend?group_by=task&limit=1001",
        "/v1/spend?group_by=task&cursor=zzz",
        "/v1/spend?group_by=day&cursor=WyJOYU4iLCAieCJd",
    ],
)
async def test_bad_limits_and_cursors_are_400(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 400, response.text
    assert ("limit" if "limit" in path else "cursor") in response.json()["detail"]


@pytest.fixture
async def served(seeded: asyncpg.Pool) -> AsyncIterator[str]:
    """The API on a real port, for the command line's synchronous client."""
    config = uvicorn.Config(
        create_app(seeded), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def test_the_cli_client_reads_every_page_of_every_list(served: str, token: str) -> None:
    def read_all() -> dict[str, int]:
        with LedgerClient(served, token) as ledger:
            spend = ledger.all_pages("/v1/spend", "groups", group_by="task", limit=2)
            assert spend["total"]["calls"] == sum(g["calls"] for g in spend["groups"])
            return {
                "tasks": len(ledger.pages("/v1/tasks", limit=2)),
                "events": len(ledger.pages("/v1/tasks/t-page-0/events", limit=5)),
                "approvals": len(ledger.pages("/v1/approvals", limit=2)),
                "spend": len(spend["groups"]),
            }

    counts = await asyncio.to_thread(read_all)
    assert counts == {"tasks": 7, "events": 12, "approvals": 7, "spend": 7}
