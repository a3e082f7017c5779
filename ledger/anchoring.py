"""Publishing the ledger's anchors to Kafka, and reading them back for `audit verify`.

`Anchorer` runs beside the ingest loop: every `anchor_interval_s`, and once more when the ingest
has drained on stop, it reads in one snapshot the global high-water mark and the heads of the
tasks that changed since the last anchor, signs each (`anchors.AnchorSigner`) and publishes it
to the compacted `<prefix>.ledger.anchors` topic, the ledger-wide anchor last. Because the writer
numbers events under a row lock held to the commit, a snapshot that sees the high-water mark N
sees every event up to N. When nothing changed nothing is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger._database import DatabaseUnavailable, connection
from ledger.anchors import LEDGER_KEY, Anchors, AnchorSigner, collect, task_key
from podium.core.settings import KafkaSettings
from topics.codec import encode
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import LedgerAnchor
from topics.names import TopicNames
from topics.tables import assign_from_beginning, partitions_of, read_to_end

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 60.0
"""Longest `read_anchors` takes to read the anchors topic to its end."""


async def ensure_anchor_topic(kafka: KafkaSettings, names: TopicNames) -> None:
    await ensure_topics(kafka, [names.ledger_anchors], compacted=[names.ledger_anchors])


class Anchorer:
    """Signs and publishes the chain heads of the ledger's schema (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        kafka: KafkaSettings,
        names: TopicNames,
        signer: AnchorSigner,
        interval_s: float,
    ) -> None:
        self._pool = pool
        self._kafka = kafka
        self._names = names
        self._signer = signer
        self._interval_s = interval_s
        self.published = 0
        """Anchors published so far (task and ledger ones)."""

    async def run(self, stop: asyncio.Event, drained: asyncio.Event) -> None:
        """Anchor every interval until `stop`; then once more after `drained` (the ingest has
        stored what it read)."""
        await ensure_anchor_topic(self._kafka, self._names)
        producer = make_producer(self._kafka)
        await producer.start()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await stop.wait()
                if not stop.is_set():
                    await self._anchor_logged(producer)
            await drained.wait()
            await self._anchor_logged(producer)
        finally:
            await producer.stop()

    async def _anchor_logged(self, producer: AIOKafkaProducer) -> None:
        try:
            await self.anchor(producer)
        except (DatabaseUnavailable, asyncpg.PostgresError, KafkaError) as exc:
            log.warning("could not anchor the ledger's chain heads (%s); next round retries", exc)

    async def anchor(self, producer: AIOKafkaProducer) -> int:
        """One round: sign and publish what changed; the number of anchors published."""
        async with connection(self._pool) as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                high: int = await conn.fetchval("SELECT last FROM ledger_sequence")
                since: int = await conn.fetchval("SELECT gseq FROM ledger_anchored")
                if high == since:
                    return 0
                heads = await conn.fetch(
                    "SELECT h.task_id, h.seq, h.hash, e.gseq FROM chain_heads h"
                    " JOIN events e ON e.task_id = h.task_id AND e.seq = h.seq"
                    " WHERE h.task_id IN"
                    " (SELECT DISTINCT task_id FROM events WHERE gseq > $1 AND gseq <= $2)",
                    since,
                    high,
                )
                tasks: int = await conn.fetchval("SELECT count(*) FROM chain_heads")
        topic = self._names.ledger_anchors
        sign = self._signer.sign
        sent = []
        for row in heads:
            anchor = sign(
                LedgerAnchor(
                    scope="task",
                    task_id=row["task_id"],
                    links=row["seq"],
                    hash=row["hash"],
                    gseq=row["gseq"],
                    key_id="",
                )
            )
            sent.append(await producer.send(topic, encode(anchor), key=task_key(anchor.task_id)))
        await asyncio.gather(*sent)
        ledger = sign(LedgerAnchor(scope="ledger", gseq=high, tasks=tasks, key_id=""))
        await producer.send_and_wait(topic, encode(ledger), key=LEDGER_KEY)
        async with connection(self._pool) as conn:
            await conn.execute("UPDATE ledger_anchored SET gseq = $1 WHERE gseq < $1", high)
        self.published += len(heads) + 1
        log.info("anchored %d chain heads up to global sequence %d", len(heads), high)
        return len(heads) + 1


async def read_anchors(
    kafka: KafkaSettings, names: TopicNames, public: Ed25519PublicKey
) -> Anchors:
    """Every anchor on the topic, from the beginning to its current end, checked with `public`."""
    topic = names.ledger_anchors
    partitions = await partitions_of(kafka, topic)
    consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)
    records: list[tuple[str, bytes | None, bytes | None]] = []

    def fold(record: ConsumerRecord[bytes, bytes]) -> None:
        where = f"{topic}[{record.partition}]@{record.offset}"
        records.append((where, record.key, record.value))

    await consumer.start()
    try:
        tps = await assign_from_beginning(consumer, topic, partitions)
        await read_to_end(consumer, tps, fold, timeout_s=READ_TIMEOUT_S)
    finally:
        await consumer.stop()
    return collect(records, public)
