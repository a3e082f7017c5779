"""The transactional consume-transform-produce loop shared by the dispatcher and every actor.

One consumer group reads an input topic. Each assigned partition gets its own transactional
producer with a STABLE `transactional_id` (`<group>.<topic>.<partition>`): aiokafka has only the
v0 transaction APIs (no KIP-447), so the stable id per partition is what fences a zombie that still
thinks it owns the partition. For each record the handler returns an `Outbox` (the messages to
produce and the changes to the partition's keyed state); the outbox, the state changelog records
and the input offset go out in ONE transaction.

Partitions are processed concurrently (up to `concurrency`), each partition strictly in order.
On revoke, in-flight work of the revoked partitions finishes within the grace period (or is
cancelled, which aborts its transaction) and their producers close. On assign, the producer is
started (which aborts a dead owner's open transaction), the committed offset is re-read and the
partition's state is restored from its compacted changelog partition.

A record is never retried forever (`actors.poison`): outputs over the message size limit are not
produced, a handler that keeps failing is retried `max_attempts` times, a transaction the broker
rejects for good is not retried; the record then goes to `on_poison`, whose outbox (a dead
letter) is committed with the input offset, without running the handler again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, ProducerFenced

from actors._commit import commit, produced
from actors.changelog import read_changelog
from actors.poison import Attempts, PoisonRecord, max_message_bytes, oversized
from actors.records import Handler, Outbox, PartitionContext, PoisonHook
from podium.core.errors import TransientError
from podium.core.retry import backoff_delay, retry_transient
from podium.core.settings import KafkaSettings
from topics.kafka import MAX_MESSAGE_BYTES, make_consumer, make_producer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Partition:
    tp: TopicPartition
    producer: AIOKafkaProducer
    context: PartitionContext
    queue: asyncio.Queue[ConsumerRecord[bytes, bytes]] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None
    busy: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    paused: bool = False
    attempts: Attempts = field(default_factory=Attempts)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TransactionalProcessor) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._owner._assign(list(assigned))


class TransactionalProcessor:
    """Runs `handler` on every record of `topic`, exactly once per record, in transactions."""

    QUEUE_HIGH_WATER = 64

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        group: str,
        handler: Handler,
        on_poison: PoisonHook,
        changelog_topic: str | None = None,
        max_attempts: int = 3,
        retry_backoff_s: float = 1.0,
        max_record_bytes: int | None = None,
        concurrency: int = 4,
        grace_s: float = 15.0,
        session_timeout_ms: int = 10000,
        client_id: str = "podium",
    ) -> None:
        self._kafka = kafka
        self.topic = topic
        self.group = group
        self._handler = handler
        self._on_poison = on_poison
        self._max_attempts = max_attempts
        self._retry_backoff_s = retry_backoff_s
        self._max_record_bytes = max_record_bytes
        self._limit = MAX_MESSAGE_BYTES
        self._changelog = changelog_topic
        self._semaphore = asyncio.Semaphore(concurrency)
        self._grace_s = grace_s
        self._session_timeout_ms = session_timeout_ms
        self._client_id = client_id
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._failed: set[TopicPartition] = set()
        self.ready = asyncio.Event()
        """Set once the group's first assignment is taken up (the partitions it gave, if any,
        are open): from then on records are processed."""

    @property
    def limit(self) -> int:
        """The largest record (bytes) a transaction may produce."""
        return self._limit

    @property
    def assigned(self) -> list[TopicPartition]:
        return sorted(self._partitions, key=lambda tp: tp.partition)

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self.group}.{tp.topic}.{tp.partition}"

    async def run(self, stop: asyncio.Event) -> None:
        self._limit = min(
            self._max_record_bytes or await max_message_bytes(self._kafka, self.topic),
            MAX_MESSAGE_BYTES,
        )
        consumer = make_consumer(
            self._kafka,
            group_id=self.group,
            client_id=self._client_id,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(1000, self._session_timeout_ms // 4),
            max_poll_interval_ms=max(300_000, int(self._grace_s * 1000) * 4),
            rebalance_timeout_ms=max(30_000, int(self._grace_s * 1000) * 2),
            fetch_max_wait_ms=100,
        )
        consumer.subscribe([self.topic], listener=_Listener(self))
        self._consumer = consumer
        try:
            await consumer.start()
            while not stop.is_set():
                await self._reseek_failed(consumer)
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                for tp, records in batches.items():
                    part = self._partitions.get(tp)
                    if part is None:
                        # Not (yet) ours: fetch it again once it is.
                        if records and tp in consumer.assignment():
                            consumer.seek(tp, records[0].offset)
                        continue
                    for record in records:
                        part.queue.put_nowait(record)
                    if part.queue.qsize() >= self.QUEUE_HIGH_WATER and not part.paused:
                        consumer.pause(tp)
                        part.paused = True
                self._resume_drained(consumer)
        finally:
            try:
                await self._revoke(list(self._partitions))
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                self._consumer = None

    def _resume_drained(self, consumer: AIOKafkaConsumer) -> None:
        for part in self._partitions.values():
            if part.paused and part.queue.qsize() < self.QUEUE_HIGH_WATER // 2:
                consumer.resume(part.tp)
                part.paused = False

    async def _reseek_failed(self, consumer: AIOKafkaConsumer) -> None:
        """A partition whose transaction failed starts again from its committed offset."""
        for tp in list(self._failed):
            self._failed.discard(tp)
            part = self._partitions.get(tp)
            if part is None:
                continue
            while not part.queue.empty():
                part.queue.get_nowait()
            part.context.state = await self._restore(tp)
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    # -- rebalance ------------------------------------------------------------------------------

    async def _assign(self, assigned: list[TopicPartition]) -> None:
        new = [tp for tp in assigned if tp not in self._partitions]
        if not new:
            self.ready.set()
            return
        consumer = self._consumer
        if consumer is not None:
            # Nothing is fetched for these partitions until their position is settled below:
            # the fetcher may already have started from a committed offset read before a dead
            # owner's transaction was resolved.
            consumer.pause(*new)
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in new))

        async def open_partition(tp: TopicPartition) -> _Partition:
            producer = make_producer(
                self._kafka,
                transactional_id=self.transactional_id(tp),
                client_id=f"{self._client_id}-{tp.partition}",
            )
            try:
                # Starting the producer runs InitProducerId: a dead owner's open transaction on
                # this partition is aborted (or completed) before we read anything.
                await producer.start()
                state = await self._restore(tp)
            except BaseException:
                await _stop_quietly(producer)
                raise
            part = _Partition(
                tp=tp, producer=producer, context=PartitionContext(tp=tp, state=state)
            )
            part.idle.set()
            return part

        opening = [asyncio.create_task(open_partition(tp)) for tp in new]
        try:
            parts = await asyncio.gather(*opening)
            for part in parts:
                if consumer is not None:
                    # Re-read the committed offset now that any open transaction is resolved.
                    committed = await consumer.committed(part.tp)
                    if committed is None:
                        await consumer.seek_to_beginning(part.tp)
                    else:
                        consumer.seek(part.tp, committed)
        except BaseException:
            # One partition failed (or the rebalance was cancelled): the others do not stay
            # half-open; the partitions are taken up again at the next assignment.
            await _discard(opening)
            raise
        for part in parts:
            self._partitions[part.tp] = part
            if consumer is not None:
                consumer.resume(part.tp)
            part.worker = asyncio.create_task(
                self._work(part), name=f"{self.group}[{part.tp.partition}]"
            )
        self.ready.set()

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        parts = [self._partitions.pop(tp) for tp in revoked if tp in self._partitions]
        if not parts:
            return
        log.info("revoking %s", ", ".join(f"{p.tp.topic}[{p.tp.partition}]" for p in parts))
        for part in parts:
            while not part.queue.empty():
                part.queue.get_nowait()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._grace_s):
                    await asyncio.gather(*(p.idle.wait() for p in parts))
        finally:
            # Also when the wait is cancelled: these partitions are no longer listed anywhere.
            for part in parts:
                if part.worker is not None:
                    part.worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await part.worker
                await _stop_quietly(part.producer)
                if self._consumer is not None and part.paused:
                    with contextlib.suppress(Exception):
                        self._consumer.resume(part.tp)

    async def _restore(self, tp: TopicPartition) -> dict[str, bytes]:
        """The partition's keyed state, from the changelog partition with the same number."""
        if self._changelog is None:
            return {}
        return await read_changelog(self._kafka, TopicPartition(self._changelog, tp.partition))

    # -- work -----------------------------------------------------------------------------------

    async def _work(self, part: _Partition) -> None:
        while True:
            record = await part.queue.get()
            part.idle.clear()
            try:
                async with self._semaphore:
                    if self._partitions.get(part.tp) is not part:
                        return
                    await self._process(part, record)
            except ProducerFenced:
                log.warning("producer of %s[%d] was fenced", part.tp.topic, part.tp.partition)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "processing %s[%d]@%d failed; retrying from the committed offset",
                    part.tp.topic,
                    part.tp.partition,
                    record.offset,
                )
                while not part.queue.empty():
                    part.queue.get_nowait()
                self._failed.add(part.tp)
                await asyncio.sleep(
                    backoff_delay(
                        max(1, part.attempts.count),
                        base_delay_s=self._retry_backoff_s,
                        max_delay_s=30.0,
                    )
                )
            finally:
                if part.queue.empty():
                    part.idle.set()

    async def _process(self, part: _Partition, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            outbox = await self._handler(record, part.context)
        except Exception as exc:
            attempts = part.attempts.failed(record.offset, exc)
            if attempts < self._max_attempts:
                raise
            await self._poison(
                part, record, f"the handler failed {attempts} attempts: {part.attempts.errors[-1]}"
            )
            return

        async def commit() -> None:
            try:
                await self._commit(part, record, outbox)
            except ProducerFenced:
                raise
            except KafkaError as exc:
                # The same outbox is committed again (the handler does not run twice), on a
                # fresh producer: a failed transaction may leave the old one unusable.
                await self._reopen(part)
                if exc.retriable:
                    raise TransientError(str(exc)) from exc
                raise PoisonRecord(f"the step's output could not be produced: {exc}") from exc

        try:
            too_large = oversized(produced(outbox, self._changelog, part.tp.partition), self._limit)
            if too_large is not None:
                raise PoisonRecord(too_large)
            await retry_transient(
                commit,
                max_attempts=self._max_attempts,
                base_delay_s=self._retry_backoff_s,
                max_delay_s=30.0,
            )
        except PoisonRecord as exc:
            await self._poison(part, record, exc.reason)
        except TransientError as exc:
            reason = f"the step's output could not be produced in {self._max_attempts} attempts"
            await self._poison(part, record, f"{reason}: {exc}")
        else:
            part.attempts.clear()

    async def _poison(
        self, part: _Partition, record: ConsumerRecord[bytes, bytes], reason: str
    ) -> None:
        """Commit the poison hook's outbox for `record` (its dead letter) with its offset."""
        log.error(
            "%s[%d]@%d cannot be processed; dead-lettered: %s",
            part.tp.topic,
            part.tp.partition,
            record.offset,
            reason,
        )
        outbox = self._on_poison(record, part.context, reason)
        too_large = oversized(produced(outbox, self._changelog, part.tp.partition), self._limit)
        if too_large is not None:
            raise RuntimeError(f"the dead letter of a record cannot be produced: {too_large}")
        await self._commit(part, record, outbox)
        part.attempts.clear()

    async def _reopen(self, part: _Partition) -> None:
        """Replace the partition's producer (same transactional id) after a failed commit."""
        with contextlib.suppress(Exception):
            await part.producer.stop()
        part.producer = make_producer(
            self._kafka,
            transactional_id=self.transactional_id(part.tp),
            client_id=f"{self._client_id}-{part.tp.partition}",
        )
        await part.producer.start()

    async def _commit(
        self, part: _Partition, record: ConsumerRecord[bytes, bytes], outbox: Outbox
    ) -> None:
        """Produce `outbox` and the input offset in one transaction; then apply its state."""
        await commit(
            part.producer,
            outbox,
            changelog=self._changelog,
            group=self.group,
            tp=part.tp,
            offset=record.offset + 1,
        )
        for key, value in outbox.state.items():
            if value is None:
                part.context.state.pop(key, None)
            else:
                part.context.state[key] = value


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    """Stop a producer (started or not: aiokafka warns about any that was never stopped)."""
    with contextlib.suppress(Exception):
        await producer.stop()


async def _discard(opening: list[asyncio.Task[_Partition]]) -> None:
    """Cancel the partitions still opening, wait for all, and close those that did open."""
    for task in opening:
        task.cancel()
    await asyncio.wait(opening)
    for task in opening:
        if not task.cancelled() and task.exception() is None:
            await _stop_quietly(task.result().producer)
