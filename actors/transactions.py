"""The transactional consume-transform-produce loop shared by the dispatcher and every actor.

One consumer group reads an input topic. Each assigned partition gets its own transactional
producer with a STABLE `transactional_id` (`<group>.<topic>.<partition>`): aiokafka has only the
v0 transaction APIs (no KIP-447), so the stable id per partition is what fences a zombie that still
thinks it owns the partition. For each record the handler returns an `Outbox` (the messages to
produce and the changes to the partition's keyed state); the outbox, the state changelog records
and the input offset go out in ONE transaction.

Records run concurrently (`actors._partition`): many per partition, in order per key (a task's
id), up to `max_in_flight` records held (taken in and not committed) by the whole processor;
at the limit every partition's fetching is paused until transactions release records. A
transaction commits the contiguous prefix of completed records of a partition with all their
outputs, so a crash re-runs only the records after the committed offset.

Zombie fencing: all the transactions of input partition p go through the one producer with
transactional id `<group>.<topic>.<p>`, one transaction at a time, whatever number of records
it carries. A new owner of p starts that producer first (InitProducerId bumps the epoch: the
previous owner's open transaction is aborted and its later sends, offset commits and commits
fail with ProducerFenced), then reads p's committed offset. Each batch of the old owner thus
either committed before (and the new owner starts after it) or never commits.

On revoke, the records of the revoked partitions may finish and commit within the grace period;
the rest are cancelled (their open transaction aborts) and their producers close. On assign, the
producer is started, the committed offset is re-read and the partition's state is restored from
its compacted changelog partition. On stop, every partition is revoked the same way; as aiokafka's
consumer lets a rebalance under way finish while it stops, an assignment that completes then
closes what it opened instead of taking it up.

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

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from actors._partition import PartitionRun, RunConfig
from actors.poison import max_message_bytes
from actors.records import Handler, PoisonHook
from podium.core.settings import KafkaSettings
from topics.kafka import MAX_MESSAGE_BYTES, make_consumer, make_producer
from topics.tables import read_latest

log = logging.getLogger(__name__)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TransactionalProcessor) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._owner._assign(list(assigned))


class TransactionalProcessor:
    """Runs `handler` on every record of `topic`, exactly once per record, in transactions."""

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
        max_in_flight: int = 256,
        grace_s: float = 15.0,
        session_timeout_ms: int = 10000,
        client_id: str = "podium",
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._kafka = kafka
        self.topic = topic
        self.group = group
        self._max_record_bytes = max_record_bytes
        self._limit = MAX_MESSAGE_BYTES
        self._changelog = changelog_topic
        self._max_in_flight = max_in_flight
        self._grace_s = grace_s
        self._session_timeout_ms = session_timeout_ms
        self._client_id = client_id
        self._partitions: dict[TopicPartition, PartitionRun] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._failed: set[TopicPartition] = set()
        self._config = RunConfig(
            group=group,
            handler=handler,
            on_poison=on_poison,
            changelog=changelog_topic,
            max_attempts=max_attempts,
            retry_backoff_s=retry_backoff_s,
            limit=lambda: self._limit,
            open_producer=self._open_producer,
            on_release=self._released,
            on_failure=self._failed.add,
            on_fenced=self._fenced,
        )
        self._capacity = asyncio.Event()
        self._throttled = False
        self._stopping = False
        """Set when `run` ends: an assignment that completes from then on opens nothing."""
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

    @property
    def held(self) -> int:
        """Records taken in and not committed, over every partition."""
        return sum(run.held for run in self._partitions.values())

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
                self._capacity.clear()
                room = self._max_in_flight - self.held
                if room <= 0:
                    # Backpressure: nothing more is fetched until transactions release records.
                    self._throttle(consumer, True)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._capacity.wait(), 0.2)
                    continue
                self._throttle(consumer, False)
                batches = await consumer.getmany(timeout_ms=200, max_records=room)
                for tp, records in batches.items():
                    run = self._partitions.get(tp)
                    if run is None:
                        # Not (yet) ours: fetch it again once it is.
                        if records and tp in consumer.assignment():
                            consumer.seek(tp, records[0].offset)
                        continue
                    for record in records:
                        run.take(record)
        finally:
            self._stopping = True
            try:
                await self._revoke(list(self._partitions))
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                self._consumer = None

    def _throttle(self, consumer: AIOKafkaConsumer, on: bool) -> None:
        if on == self._throttled:
            return
        self._throttled = on
        tps = [tp for tp, run in self._partitions.items() if not run.fenced]
        if not tps:
            return
        if on:
            consumer.pause(*tps)
        else:
            consumer.resume(*tps)

    def _released(self) -> None:
        self._capacity.set()

    def _fenced(self, tp: TopicPartition) -> None:
        """Another owner has the partition: fetch nothing more of it until it is revoked."""
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.pause(tp)

    async def _reseek_failed(self, consumer: AIOKafkaConsumer) -> None:
        """A partition whose run failed starts again from its committed offset and state, on a
        fresh producer (which aborts the transaction it may have left open)."""
        for tp in list(self._failed):
            self._failed.discard(tp)
            run = self._partitions.get(tp)
            if run is None:
                continue
            await run.close()
            await _stop_quietly(run.producer)
            producer = await self._open_producer(tp)
            try:
                state = await self._restore(tp)
            except BaseException:
                await _stop_quietly(producer)
                raise
            if self._partitions.get(tp) is not run:  # revoked meanwhile
                await _stop_quietly(producer)
                continue
            self._partitions[tp] = PartitionRun(
                self._config, tp=tp, producer=producer, state=state, resets=run.resets + 1
            )
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    # -- rebalance ------------------------------------------------------------------------------

    async def _open_producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        producer = make_producer(
            self._kafka,
            transactional_id=self.transactional_id(tp),
            client_id=f"{self._client_id}-{tp.partition}",
        )
        try:
            # Starting the producer runs InitProducerId: a previous owner's open transaction on
            # this partition is aborted (or completed), and that owner is fenced.
            await producer.start()
        except BaseException:
            await _stop_quietly(producer)
            raise
        return producer

    async def _assign(self, assigned: list[TopicPartition]) -> None:
        if self._stopping:
            return
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

        async def open_partition(tp: TopicPartition) -> tuple[AIOKafkaProducer, dict[str, bytes]]:
            producer = await self._open_producer(tp)
            try:
                return producer, await self._restore(tp)
            except BaseException:
                await _stop_quietly(producer)
                raise

        opening = [asyncio.create_task(open_partition(tp)) for tp in new]
        try:
            opened = await asyncio.gather(*opening)
            if consumer is not None and not self._stopping:
                for tp in new:
                    # Re-read the committed offset now that any open transaction is resolved.
                    committed = await consumer.committed(tp)
                    if committed is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, committed)
        except BaseException:
            # One partition failed (or the rebalance was cancelled): the others do not stay
            # half-open; the partitions are taken up again at the next assignment.
            await _discard(opening)
            raise
        if self._stopping:
            # `run` ended while these opened: aiokafka's consumer lets a rebalance under way
            # finish as it stops, after `run` revoked what it had, so nobody would close them.
            for producer, _ in opened:
                await _stop_quietly(producer)
            return
        for tp, (producer, state) in zip(new, opened, strict=True):
            self._partitions[tp] = PartitionRun(self._config, tp=tp, producer=producer, state=state)
            if consumer is not None and not self._throttled:
                consumer.resume(tp)
        self.ready.set()

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        runs = [self._partitions.pop(tp) for tp in revoked if tp in self._partitions]
        if not runs:
            return
        log.info("revoking %s", ", ".join(f"{r.tp.topic}[{r.tp.partition}]" for r in runs))
        try:
            # What is in flight may finish and commit within the grace period.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._grace_s):
                    await asyncio.gather(*(r.drained() for r in runs if not r.fenced))
        finally:
            # Also when the wait is cancelled: these partitions are no longer listed anywhere.
            for run in runs:
                await run.close()
                await _stop_quietly(run.producer)
                if self._consumer is not None:
                    with contextlib.suppress(Exception):
                        self._consumer.resume(run.tp)

    async def _restore(self, tp: TopicPartition) -> dict[str, bytes]:
        """The partition's keyed state, from the changelog partition with the same number."""
        if self._changelog is None:
            return {}
        return await read_latest(self._kafka, self._changelog, partitions=[tp.partition])


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    """Stop a producer (started or not: aiokafka warns about any that was never stopped)."""
    with contextlib.suppress(Exception):
        await producer.stop()


async def _discard(
    opening: list[asyncio.Task[tuple[AIOKafkaProducer, dict[str, bytes]]]],
) -> None:
    """Cancel the partitions still opening, wait for all, and close those that did open."""
    for task in opening:
        task.cancel()
    await asyncio.wait(opening)
    for task in opening:
        if not task.cancelled() and task.exception() is None:
            await _stop_quietly(task.result()[0])
