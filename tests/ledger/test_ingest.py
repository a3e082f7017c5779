"""The ledger service on real Kafka and PostgreSQL: consume, dedupe, DLQ, crash and restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from ledger.audit import verify
from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from podium.core.settings import DatabaseSettings, KafkaSettings
from tests.helpers import consume_decoded, wait_until
from tests.ledger.conftest import task_events
from topics.codec import encode
from topics.kafka import ensure_topics, make_producer
from topics.messages import DeadLetter, Event, TaskCompleted
from topics.names import TopicNames

pytestmark = pytest.mark.integration


@asynccontextmanager
async def running(
    settings: LedgerSettings, database_url: str, kafka: KafkaSettings
) -> AsyncIterator[LedgerService]:
    service = LedgerService(settings, DatabaseSettings(url=database_url), kafka, api=False)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def produce(kafka: KafkaSettings, topic: str, values: list[tuple[str, bytes]]) -> None:
    producer = make_producer(kafka)
    try:
        await producer.start()
        for key, value in values:
            await producer.send(topic, value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def encoded(events: list[Event]) -> list[tuple[str, bytes]]:
    return [(e.task_id, encode(e)) for e in events]


async def count(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("SELECT count(*) FROM events")
    return value


async def test_events_and_results_are_stored_once_and_bad_ones_dead_lettered(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    ledger_settings: LedgerSettings,
    database_url: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    names = topic_names
    await ensure_topics(kafka_settings, [names.events, names.results])
    events = task_events("t-k1") + task_events("t-k2")
    result = TaskCompleted(task_id="t-k1", system="research", output="final answer")
    bad = [("t-k1", b"{not json"), ("t-k2", b'{"event_id": "x", "type": 3}')]
    # Everything twice (a redelivering producer), the bad ones in the middle.
    await produce(kafka_settings, names.events, encoded(events[:5]) + bad + encoded(events))
    await produce(kafka_settings, names.results, [("t-k1", encode(result))] * 2)
    async with running(ledger_settings, database_url, kafka_settings):
        expected = len(events) + 1 + len(bad)  # + the result + a dead-letter note per bad one
        await wait_until(lambda: _at_least(ledger_pool, expected), timeout=60)
        letters = await consume_decoded(kafka_settings, names.events_dlq, 2, DeadLetter)
    assert await count(ledger_pool) == expected
    assert sorted(letter.value for letter in letters) == sorted(v for _, v in bad)
    assert all(letter.reason and letter.service == "ledger" for letter in letters)
    task = await ledger_pool.fetchrow("SELECT * FROM tasks WHERE task_id = 't-k1'")
    assert task["status"] == "succeeded" and task["output"] == "final answer"
    types = [
        r["type"]
        for r in await ledger_pool.fetch(
            "SELECT type FROM events WHERE task_id = 't-k1' ORDER BY seq"
        )
    ]
    assert "message.dead_lettered" in types and "task.result" in types
    async with ledger_pool.acquire() as conn:
        assert (await verify(conn)).ok


async def _at_least(pool: asyncpg.Pool, n: int) -> bool:
    return await count(pool) >= n


async def test_restart_mid_batch_loses_and_duplicates_nothing(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    ledger_settings: LedgerSettings,
    database_url: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    await ensure_topics(kafka_settings, [topic_names.events, topic_names.results])
    events = [e for n in range(150) for e in task_events(f"t-r{n}")]
    await produce(kafka_settings, topic_names.events, encoded(events))
    settings = ledger_settings.model_copy(update={"batch_size": 50})
    service = LedgerService(settings, DatabaseSettings(url=database_url), kafka_settings, api=False)
    crashed = asyncio.create_task(service.run(asyncio.Event()))
    # Crash it (no drain, no offset commit of the batch in flight) once part is stored.
    await wait_until(lambda: _at_least(ledger_pool, 200), timeout=60)
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    stored_at_crash = await count(ledger_pool)
    assert stored_at_crash < len(events)
    async with running(settings, database_url, kafka_settings) as second:
        await wait_until(lambda: _at_least(ledger_pool, len(events)), timeout=90)
        await wait_until(lambda: second.ingester is not None, timeout=10)
    assert await count(ledger_pool) == len(events)
    ids = {r[0] for r in await ledger_pool.fetch("SELECT event_id FROM events")}
    assert ids == {e.event_id for e in events}
    async with ledger_pool.acquire() as conn:
        report = await verify(conn)
    assert report.ok and report.tasks == 150
    calls = await ledger_pool.fetchval("SELECT sum(calls) FROM spend_hourly")
    assert calls == sum(1 for e in events if e.type == "model.called")
