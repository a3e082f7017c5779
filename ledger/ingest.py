"""The ingest loop: consume events and results, write them in batches, then commit offsets.

At-least-once from Kafka, idempotent in PostgreSQL: a batch is written in one transaction per
part (`writer`) and its offsets are committed only after those transactions commit. Reading runs
one batch ahead of writing: while a batch is in PostgreSQL, the next one is fetched, decoded,
hashed and turned into COPY rows (`batch.prepare_parts`), and the writer checks under its locks
that the chains are where the reader assumed before using that work. When PostgreSQL is
unreachable the writer keeps the batch, waits with capped backoff, reconnects and writes it, so
nothing is lost or duplicated. A message that does not parse goes to `<topic>.dlq` with the
reason (and a `message.dead_lettered` event for its task is chained when its key names one); a
single event that PostgreSQL refuses (e.g. a NUL character) is dead-lettered the same way. The
loop never stops for one bad message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import ChainMap
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from ledger._database import DatabaseUnavailable, connection
from ledger.batch import (
    SERVICE,
    Dead,
    HeadsCache,
    Part,
    dead_letter_event,
    decode_records,
    prepare_parts,
    split,
)
from ledger.plan import Incoming
from ledger.settings import LedgerSettings
from ledger.writer import BatchWriter
from podium.core.settings import KafkaSettings
from topics.codec import encode, headers_for
from topics.dlq import dead_letter, dlq_topic
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.names import TopicNames

log = logging.getLogger(__name__)

PIPELINE_DEPTH = 1
"""Batches read and prepared ahead of the one being written (memory: batch_size each)."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    """A batch read from Kafka: its events (in task-disjoint parts, each stored in its own
    transaction, concurrently), its undecodable records, and the offsets to commit once every
    part is stored."""

    parts: list[Part]
    dead: list[Dead]
    offsets: dict[TopicPartition, int]


class Ingester:
    """Consumes `events` and `results` in the ledger group and stores them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: LedgerSettings,
        kafka: KafkaSettings,
        names: TopicNames,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._kafka = kafka
        self._names = names
        self._heads = HeadsCache()
        self._writer = BatchWriter(pool, settings, self._heads)
        self.dead_lettered = 0

    @property
    def stored(self) -> int:
        return self._writer.stored

    @property
    def duplicates(self) -> int:
        return self._writer.duplicates

    @property
    def replanned(self) -> int:
        return self._writer.replanned

    async def run(self, stop: asyncio.Event) -> None:
        names = self._names
        topics = [names.events, names.results]
        await ensure_topics(self._kafka, [*topics, *(dlq_topic(t) for t in topics)])
        consumer = make_consumer(
            self._kafka,
            *topics,
            group_id=names.ledger_group,
            max_poll_records=self._settings.batch_size,
            fetch_max_wait_ms=100,
        )
        producer = make_producer(self._kafka)
        try:
            await producer.start()
            await consumer.start()
            await self._loop(consumer, producer, stop)
        finally:
            try:
                await consumer.stop()
            finally:
                await producer.stop()

    async def _loop(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        """A bounded pipeline: the reader fetches, decodes and prepares the next batches while
        the writer stores the current one; offsets are committed by the writer, in order, only
        after the transaction of the batch that holds them has committed."""
        ready: asyncio.Queue[_Fetched | None] = asyncio.Queue(maxsize=PIPELINE_DEPTH)
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(self._read(consumer, ready, stop), name="ledger-read")
            try:
                await self._write_all(consumer, producer, ready, stop)
            finally:
                reader.cancel()

    async def _read(
        self,
        consumer: AIOKafkaConsumer,
        ready: asyncio.Queue[_Fetched | None],
        stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            fetched = await self._fetch(consumer)
            if fetched is None:
                continue
            await ready.put(await self._prepare(fetched))
        await ready.put(None)

    async def _write_all(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        ready: asyncio.Queue[_Fetched | None],
        stop: asyncio.Event,
    ) -> None:
        """Store the prepared batches in order; on stop, the ones already read are drained."""
        while (fetched := await ready.get()) is not None:
            if not await self._store(fetched.parts, fetched.dead, producer, stop):
                return  # stopped while PostgreSQL was away: nothing committed, redelivered later
            try:
                await consumer.commit(fetched.offsets)
            except (CommitFailedError, KafkaError) as exc:
                # A rebalance took the partitions; their new owner re-reads and dedupes.
                log.warning("could not commit ledger offsets (%s); they will be redelivered", exc)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> _Fetched | None:
        """Up to batch_size records, waiting at most the flush interval for more; None if none.

        The records of each partition stay in offset order (a task's events keep the order in
        which they were produced); partitions are taken in (topic, partition) order."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.flush_interval_s
        parts: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        count = 0
        while count < self._settings.batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            fetched = await consumer.getmany(
                timeout_ms=max(1, int(remaining * 1000)),
                max_records=self._settings.batch_size - count,
            )
            for tp, records in fetched.items():
                if records:
                    parts.setdefault(tp, []).extend(records)
                    count += len(records)
        if not count:
            return None
        records_in_order: list[ConsumerRecord[bytes, bytes]] = []
        offsets: dict[TopicPartition, int] = {}
        for tp in sorted(parts, key=lambda tp: (tp.topic, tp.partition)):
            part = parts[tp]
            records_in_order.extend(part)
            offsets[tp] = part[-1].offset + 1
        items, dead = decode_records(records_in_order, self._names.results)
        return _Fetched(split(items, self._settings.writers), dead, offsets)

    async def _prepare(self, fetched: _Fetched) -> _Fetched:
        """Plan the parts on the heads the chains will have once the batches before them are
        stored (known here, or read for tasks this ingester has not seen); the writer checks
        that assumption under the part's locks and plans again when it does not hold. When the
        heads cannot be read, the parts are planned in the transaction instead."""
        if not fetched.parts:
            return fetched
        unknown = self._heads.unknown(fetched.parts)
        known: dict[str, tuple[int, str]] = {}
        if unknown:
            try:
                async with connection(self._pool) as conn:
                    rows = await conn.fetch(
                        "SELECT task_id, seq, hash FROM chain_heads"
                        " WHERE task_id = ANY($1::text[])",
                        unknown,
                    )
            except (DatabaseUnavailable, asyncpg.PostgresError):
                return fetched
            known = {r[0]: (r[1], r[2]) for r in rows}
        parts = prepare_parts(fetched.parts, ChainMap(known, self._heads.heads), self._heads)
        return _Fetched(parts, fetched.dead, fetched.offsets)

    async def _store(
        self,
        parts: list[Part],
        dead: list[Dead],
        producer: AIOKafkaProducer,
        stop: asyncio.Event,
    ) -> bool:
        """Write every part (retrying while the database is away); then dead-letter what could
        not be stored. False if stopped before every part was stored."""
        refused = await self._writer.store(parts, stop)
        if refused is None:
            return False
        dead = dead + refused
        if dead:
            await self._dead_letter(dead, producer, stop)
        return True

    async def _dead_letter(
        self, dead: list[Dead], producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        notes: list[Incoming] = []
        for entry in dead:
            record = entry.record
            letter = dead_letter(record, entry.reason, service=SERVICE)
            await producer.send_and_wait(
                dlq_topic(record.topic),
                encode(letter),
                key=record.key,
                headers=headers_for(letter),
            )
            self.dead_lettered += 1
            log.warning(
                "dead-lettered %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                entry.reason,
            )
            note = dead_letter_event(record, entry.reason)
            if note is not None:
                notes.append(note)
        if notes:
            await self._store([Part(notes)], [], producer, stop)
