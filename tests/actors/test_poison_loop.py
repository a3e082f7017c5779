"""The transactional loop gives up on a record after a bounded number of attempts: a handler
that always raises ends in the dead-letter path, committed, and the next record is processed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiokafka import ConsumerRecord

from actors.records import Outbox, OutRecord, PartitionContext
from actors.transactions import TransactionalProcessor
from podium.core.settings import KafkaSettings
from tests.faults.cluster import read_topic
from tests.helpers import wait_until
from topics.kafka import ensure_topics, make_producer

pytestmark = pytest.mark.integration


async def test_a_handler_that_always_raises_is_dead_lettered(
    kafka_settings: KafkaSettings,
) -> None:
    tag = uuid.uuid4().hex[:8]
    source, out, dlq = f"poison-{tag}", f"poison-{tag}.out", f"poison-{tag}.dlq"
    kafka = kafka_settings.model_copy(update={"partitions": 1})
    await ensure_topics(kafka, [source, out, dlq])
    attempts: list[int] = []
    done: list[bytes] = []

    async def handler(record: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        if record.value == b"boom":
            attempts.append(record.offset)
            raise RuntimeError("the handler is broken")
        done.append(record.value)
        return Outbox(records=[OutRecord(topic=out, key=None, value=record.value)])

    def poisoned(
        record: ConsumerRecord[bytes, bytes], ctx: PartitionContext, reason: str
    ) -> Outbox:
        return Outbox(records=[OutRecord(topic=dlq, key=None, value=reason.encode())])

    processor = TransactionalProcessor(
        kafka,
        topic=source,
        group=f"g-{tag}",
        handler=handler,
        on_poison=poisoned,
        max_attempts=3,
        retry_backoff_s=0.05,
        session_timeout_ms=6000,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    try:
        producer = make_producer(kafka)
        await producer.start()
        try:
            for value in (b"boom", b"fine"):
                await producer.send_and_wait(source, value, partition=0)
        finally:
            await producer.stop()
        await wait_until(lambda: done == [b"fine"], timeout=60, message="the next record")
        letters = [r.value for r in await read_topic(kafka, dlq)]
        assert len(letters) == 1 and b"the handler is broken" in (letters[0] or b""), letters
        assert b"3 attempts" in (letters[0] or b"")
        assert attempts == [0, 0, 0]
        assert [r.value for r in await read_topic(kafka, out)] == [b"fine"]
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 30)
