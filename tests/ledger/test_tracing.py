"""The ledger's write is a span of each task's trace, end to end on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from podium.core import tracing
from podium.core.settings import DatabaseSettings, KafkaSettings
from tests.helpers import wait_until
from tests.ledger.conftest import task_events
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_producer
from topics.names import TopicNames

pytestmark = pytest.mark.integration


async def test_a_ledger_append_span_carries_the_trace_id_of_the_task(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    ledger_settings: LedgerSettings,
    database_url: str,
    ledger_pool: asyncpg.Pool,
) -> None:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter)
    await ensure_topics(kafka_settings, [topic_names.events, topic_names.results])
    events = task_events("t-traced")
    producer = make_producer(kafka_settings)
    try:
        await producer.start()
        with tracing.tracer().start_as_current_span("step planner") as step:
            for ev in events:
                await producer.send(
                    topic_names.events,
                    encode(ev),
                    key=ev.task_id.encode(),
                    headers=headers_for(ev, tracing.trace_headers()),
                )
        await producer.flush()
    finally:
        await producer.stop()
    trace_id = step.get_span_context().trace_id

    service = LedgerService(
        ledger_settings, DatabaseSettings(url=database_url), kafka_settings, api=False
    )
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:

        def appended() -> list[ReadableSpan]:
            return [
                s
                for s in exporter.get_finished_spans()
                if s.name == "ledger.append"
                and (s.attributes or {}).get("podium.task_id") == "t-traced"
            ]

        appends = await wait_until(appended, timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    assert {s.context.trace_id for s in appends if s.context} == {trace_id}
    assert {s.parent.span_id for s in appends if s.parent} == {step.get_span_context().span_id}
    assert all(s.context and s.parent for s in appends)
    stored = await ledger_pool.fetchval("SELECT count(*) FROM events WHERE task_id = 't-traced'")
    assert stored == len(events)
