"""Usage settlement's retries, against a budget store that fails on purpose (no database)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

import asyncpg
import msgspec
import pytest
from aiokafka import ConsumerRecord

from policy_service import settlement
from policy_service.budgets import BudgetStore
from tests.helpers import wait_until
from topics.codec import encode
from topics.messages import ModelCalledData, event


class FlakyStore:
    """Fails its first `failures` settlements, then settles."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    async def settle(self, **fields: Any) -> bool:
        self.calls.append(fields)
        if len(self.calls) <= self.failures:
            raise ConnectionRefusedError("the database is down")
        return True


def usage_record() -> ConsumerRecord[bytes, bytes]:
    ev = event(
        ModelCalledData(
            request_id="r1",
            provider="mock",
            endpoint="local",
            model="mock-small",
            input_tokens=10,
            output_tokens=20,
            cost_usd=0.01,
        ),
        event_id="e1",
        task_id="t1",
        source="actor",
    )
    value = encode(ev)
    return ConsumerRecord(
        topic="events",
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"t1",
        value=value,
        checksum=None,
        serialized_key_size=2,
        serialized_value_size=len(value),
        headers=[],
    )


async def settle_one(store: FlakyStore, stop: asyncio.Event) -> bool:
    return await settlement._settle_one(usage_record(), cast(BudgetStore, store), stop)


async def test_settling_retries_until_the_database_answers(monkeypatch: Any) -> None:
    monkeypatch.setattr(settlement, "SETTLE_BASE_DELAY_S", 0.01)
    store = FlakyStore(failures=3)
    assert await asyncio.wait_for(settle_one(store, asyncio.Event()), 5) is True
    assert len(store.calls) == 4
    assert store.calls[-1] == {"event_id": "e1", "request_id": "r1", "tokens": 30, "usd": 0.01}


async def test_a_stop_ends_the_wait_between_attempts_at_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(settlement, "SETTLE_BASE_DELAY_S", 60.0)
    monkeypatch.setattr(settlement, "SETTLE_MAX_DELAY_S", 60.0)
    store = FlakyStore(failures=1_000)
    stop = asyncio.Event()
    settling = asyncio.create_task(settle_one(store, stop))
    await wait_until(lambda: store.calls or settling.done(), timeout=5, interval=0.01)
    stop.set()
    assert await asyncio.wait_for(settling, 2) is False


async def test_nothing_is_settled_once_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    store = FlakyStore(failures=0)
    assert await settle_one(store, stop) is False
    assert store.calls == []


class RefusingStore(FlakyStore):
    """Refuses the usage as data, the way PostgreSQL refuses a total that leaves bigint."""

    async def settle(self, **fields: Any) -> bool:
        self.calls.append(fields)
        raise asyncpg.exceptions.NumericValueOutOfRangeError("bigint out of range")


async def test_a_usage_the_database_refuses_as_data_is_not_retried() -> None:
    store = RefusingStore(failures=0)
    assert await asyncio.wait_for(settle_one(store, asyncio.Event()), 5) is True
    assert len(store.calls) == 1


def model_called_record(**usage: Any) -> ConsumerRecord[bytes, bytes]:
    fields = {
        "request_id": "r1",
        "provider": "mock",
        "endpoint": "local",
        "model": "mock-small",
        **usage,
    }
    ev = event(ModelCalledData(**fields), event_id="e2", task_id="t1", source="actor")
    raw = msgspec.json.decode(encode(ev))
    raw["data"].update(usage)  # the producer's own checks are not the consumer's
    value = msgspec.json.encode(raw)
    return dataclasses.replace(usage_record(), value=value, serialized_value_size=len(value))


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": -1_000_000},
        {"output_tokens": 2**62},
        {"input_tokens": 2**63 - 1, "output_tokens": 2**63 - 1},
        {"cost_usd": -5.0},
        {"cost_usd": 1e300},
    ],
)
async def test_usage_out_of_bounds_settles_nothing(usage: dict[str, Any]) -> None:
    store = FlakyStore(failures=0)
    record = model_called_record(**usage)
    assert await settlement._settle_one(record, cast(BudgetStore, store), asyncio.Event())
    assert store.calls == []
