"""Fixtures of the ledger tests: a migrated schema, a pool on it, event factories."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from ledger.migrate import migrate
from ledger.settings import LedgerSettings
from ledger.store import create_pool
from topics.messages import (
    Event,
    ModelCalledData,
    PolicyDecidedData,
    StepCompletedData,
    StepStartedData,
    TaskCompletedData,
    TaskRequestedData,
    ToolCalledData,
    event,
)


@pytest.fixture
def ledger_settings(pg_schema: str) -> LedgerSettings:
    return LedgerSettings(schema_name=pg_schema, api_port=0, batch_size=200, flush_interval_s=0.05)


@pytest.fixture
async def ledger_pool(database_url: str, pg_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's schema, with the ledger's migrations applied."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, pg_schema)
    finally:
        await conn.close()
    pool = await create_pool(database_url, pg_schema, size=4)
    try:
        yield pool
    finally:
        await pool.close()


_counter = itertools.count()


def task_events(
    task_id: str,
    *,
    system: str = "research",
    agents: tuple[str, ...] = ("planner", "writer"),
    model: str = "gpt-4o-mini",
    cost: float | None = 0.00125,
    start: datetime | None = None,
) -> list[Event]:
    """A realistic task: requested, one step per agent with a policy decision, a model call and
    a tool call, then completed."""
    at = start or datetime.now(UTC)
    tick = itertools.count()

    def t() -> datetime:
        return at + timedelta(milliseconds=10 * next(tick))

    def eid() -> str:
        return f"{task_id}-{next(_counter)}-{uuid.uuid4().hex[:6]}"

    env: dict[str, Any] = {"system": system}
    out = [event(TaskRequestedData(input="hello"), event_id=eid(), task_id=task_id, at=t(), **env)]
    for agent in agents:
        step = f"{task_id}/{agent}"
        envs: dict[str, Any] = {**env, "agent": agent, "step_id": step}
        out += [
            event(StepStartedData(), event_id=eid(), task_id=task_id, at=t(), **envs),
            event(
                PolicyDecidedData(
                    request_id="r1",
                    action="model_call",
                    model=model,
                    decision="allow",
                    rule="allowed_models",
                ),
                event_id=eid(),
                task_id=task_id,
                at=t(),
                **envs,
            ),
            event(
                ModelCalledData(
                    request_id="r1",
                    provider="openai",
                    endpoint="ep",
                    model=model,
                    input_tokens=100,
                    output_tokens=20,
                    cost_usd=cost,
                    price_source="genai-prices" if cost is not None else "unknown",
                ),
                event_id=eid(),
                task_id=task_id,
                at=t(),
                **envs,
            ),
            event(
                ToolCalledData(request_id="r2", tool="web-search", arguments={"q": "x"}),
                event_id=eid(),
                task_id=task_id,
                at=t(),
                **envs,
            ),
            event(
                StepCompletedData(output=f"{agent} done"),
                event_id=eid(),
                task_id=task_id,
                at=t(),
                **envs,
            ),
        ]
    out.append(
        event(
            TaskCompletedData(output="final answer"), event_id=eid(), task_id=task_id, at=t(), **env
        )
    )
    return out
