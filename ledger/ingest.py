"""The ingest loop: consume events and results, write them in batches, then commit offsets.

At-least-once from Kafka, idempotent in PostgreSQL: a batch is written in one transaction and
its offsets are committed only after that transaction commits. Reading runs one batch ahead of
writing: while a batch is in PostgreSQL, the next one is fetched, decoded, hashed and turned into
COPY rows (`store.prepare`), and the writer checks under its locks that the chains are where the
reader assumed before using that work. When PostgreSQL is unreachable
the loop keeps the batch, waits with capped backoff, reconnects and writes it, so nothing is
lost or duplicated. A message that does not parse goes to `<topic>.dlq` with the reason (and a
`message.dead_lettered` event for its task is chained when its key names one); a single event
that PostgreSQL refuses (e.g. a NUL character) is dead-lettered the same way. The loop never
stops for one bad message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import asyncpg
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from ledger._database import TRANSIENT_DB_ERRORS, DatabaseUnavailable, connection
from ledger.plan import Incoming, decode_event, decode_result, incoming
from ledger.settings import LedgerSettings
from ledger.store import PreparedBatch, WriteResult, prepare, write_batch
from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, encode, headers_dict, headers_for
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import DeadLetter, Event, EventType, MessageDeadLetteredData
from topics.names import TopicNames

log = logging.getLogger(__name__)

SERVICE = "ledger"

PIPELINE_DEPTH = 1
"""Batches read and prepared ahead of the one being written (memory: batch_size each)."""

HEADS_CACHED = 200_000
"""Chain heads the reader remembers; a task it forgot costs one indexed lookup."""


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class Dead:
    record: ConsumerRecord[bytes, bytes]
    reason: str


@dataclass(frozen=True, slots=True)
class _Part:
    """Events of a batch whose tasks no other part has, and their plan if prepared ahead."""

    items: list[Incoming]
    prepared: PreparedBatch | None = None


@dataclass(frozen=True, slots=True)
class _Fetched:
    """A batch read from Kafka: its events (in task-disjoint parts, each stored in its own
    transaction, concurrently), its undecodable records, and the offsets to commit once every
    part is stored."""

    parts: list[_Part]
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
        self.stored = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.replanned = 0
        self._heads: dict[str, tuple[int, str]] = {}
        """Chain heads as the batches read so far leave them (bounded, a hint only)."""

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
        await producer.start()
        try:
            await consumer.start()
            try:
                await self._loop(consumer, producer, stop)
            finally:
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
        items, dead = self._decode(records_in_order)
        return _Fetched(self._split(items), dead, offsets)

    def _split(self, items: list[Incoming]) -> list[_Part]:
        """Task-disjoint parts, each in arrival order (a task's chain is in one part)."""
        n = self._settings.writers
        if n == 1 or len(items) < 2 * n:
            return [_Part(items)] if items else []
        groups: list[list[Incoming]] = [[] for _ in range(n)]
        for item in items:
            groups[hash(item.event.task_id) % n].append(item)
        return [_Part(group) for group in groups if group]

    async def _prepare(self, fetched: _Fetched) -> _Fetched:
        """Plan the parts on the heads the chains will have once the batches before them are
        stored (known here, or read for tasks this ingester has not seen); the writer checks
        that assumption under the part's locks and plans again when it does not hold."""
        if not fetched.parts:
            return fetched
        heads = self._heads
        unknown = list({i.event.task_id for p in fetched.parts for i in p.items} - heads.keys())
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
                return fetched  # planned in the transaction instead
            known = {r[0]: (r[1], r[2]) for r in rows}
        assumed = ChainMap(known, heads)
        parts = []
        for part in fetched.parts:
            prepared = prepare(part.items, assumed)
            self._remember(prepared.plan.heads)
            parts.append(_Part(part.items, prepared))
        return _Fetched(parts, fetched.dead, fetched.offsets)

    def _remember(self, heads: Mapping[str, tuple[int, str]]) -> None:
        cache = self._heads
        cache.update(heads)
        if len(cache) > HEADS_CACHED:
            for task_id in list(islice(cache, len(cache) - HEADS_CACHED * 9 // 10)):
                del cache[task_id]

    def _decode(
        self, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[Incoming], list[Dead]]:
        items: list[Incoming] = []
        dead: list[Dead] = []
        results = self._names.results
        for record in records:
            decoder = decode_result if record.topic == results else decode_event
            try:
                items.append(decoder(record.value, record.topic, record.partition, record.offset))
            except MalformedMessage as exc:
                dead.append(Dead(record, exc.reason))
        return items, dead

    async def _store(
        self,
        parts: list[_Part],
        dead: list[Dead],
        producer: AIOKafkaProducer,
        stop: asyncio.Event,
    ) -> bool:
        """Write every part, concurrently (retrying while the database is away); then
        dead-letter what could not be stored. False if stopped before every part was stored."""
        if len(parts) == 1:
            outcomes = [await self._store_part(parts[0], stop)]
        else:
            async with asyncio.TaskGroup() as group:
                running = [group.create_task(self._store_part(p, stop)) for p in parts]
            outcomes = [task.result() for task in running]
        refused: list[Dead] = []
        for outcome in outcomes:
            if outcome is None:
                return False
            refused += outcome
        dead = dead + refused
        if dead:
            await self._dead_letter(dead, producer, stop)
        return True

    async def _store_part(self, part: _Part, stop: asyncio.Event) -> list[Dead] | None:
        """Write one part, retrying with capped backoff; the events PostgreSQL refuses, or
        None if stopped first."""
        attempt = 0
        while True:
            try:
                return await self._write(part.items, part.prepared)
            except DatabaseUnavailable as exc:
                attempt += 1
                pause = min(self._settings.reconnect_max_s, 0.05 * 2**attempt)
                pause *= 0.5 + random.random() / 2
                log.warning(
                    "ledger write failed (%s: %s); retrying in %.2f s (attempt %d)",
                    type(exc).__name__,
                    exc,
                    pause,
                    attempt,
                )
                try:
                    await asyncio.wait_for(stop.wait(), timeout=pause)
                    return None
                except TimeoutError:
                    continue

    async def _write(self, items: list[Incoming], prepared: PreparedBatch | None) -> list[Dead]:
        """Store the batch; if PostgreSQL refuses it for a data error, store item by item and
        return the ones it refuses."""
        schema = self._settings.schema_name
        async with connection(self._pool) as conn:
            try:
                self._count(await write_batch(conn, schema, items, prepared), prepared)
                return []
            except TRANSIENT_DB_ERRORS:
                raise
            except asyncpg.PostgresError as exc:
                log.warning("batch refused (%s); storing its %d events one by one", exc, len(items))
            refused: list[Dead] = []
            for item in items:
                try:
                    self._count(await write_batch(conn, schema, [item]), None)
                except TRANSIENT_DB_ERRORS:
                    raise
                except asyncpg.PostgresError as exc:
                    refused.append(Dead(_record_of(item), f"PostgreSQL refused the event: {exc}"))
            return refused

    def _count(self, result: WriteResult, prepared: PreparedBatch | None) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        if prepared is None or result.replanned:
            # The chains moved otherwise than the reader assumed: it plans on the real heads
            # from now on (a batch it prepared meanwhile is checked and planned again).
            self.replanned += result.replanned
            self._heads.update(result.heads)

    async def _dead_letter(
        self, dead: list[Dead], producer: AIOKafkaProducer, stop: asyncio.Event
    ) -> None:
        notes: list[Incoming] = []
        for entry in dead:
            record = entry.record
            letter = DeadLetter(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value or b"",
                headers=headers_dict(record.headers),
                reason=entry.reason,
                service=SERVICE,
            )
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
            note = _dead_letter_event(record, entry.reason)
            if note is not None:
                notes.append(note)
        if notes:
            await self._store([_Part(notes)], [], producer, stop)


def _dead_letter_event(record: ConsumerRecord[bytes, bytes], reason: str) -> Incoming | None:
    """A `message.dead_lettered` event for the task the record's key names, if it names one."""
    try:
        task_id = (record.key or b"").decode("utf-8")
        payload = MessageDeadLetteredData(
            topic=record.topic,
            dlq_topic=dlq_topic(record.topic),
            partition=record.partition,
            offset=record.offset,
            reason=reason[:2000],
        )
        ev = msgspec.convert(
            {
                "event_id": f"dlq:{record.topic}:{record.partition}:{record.offset}",
                "type": str(EventType.MESSAGE_DEAD_LETTERED),
                "task_id": task_id,
                "source": SERVICE,
                "data": msgspec.to_builtins(payload),
            },
            type=Event,
        )
    except (UnicodeDecodeError, msgspec.ValidationError):
        return None
    return incoming(ev, record.topic, record.partition, record.offset)


def _record_of(item: Incoming) -> Any:
    return _RecordView(item)


class _RecordView:
    """The parts of a ConsumerRecord the dead-letter path needs, rebuilt from a decoded item."""

    def __init__(self, item: Incoming) -> None:
        self.topic = item.topic
        self.partition = item.partition
        self.offset = item.offset
        self.key = item.event.task_id.encode()
        self.value = item.body
        self.headers: list[tuple[str, bytes]] = []
