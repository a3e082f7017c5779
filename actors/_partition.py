"""The records of one assigned partition in flight, and the transactions that commit them.

Every record taken in runs as its own task, at once, except that records with the same key (a
task's id) run one after the other, in offset order: ordering is per task, not per partition.
A record's outbox is kept until the record and every record before it have completed
(`actors.offsets.OffsetTracker`); one transaction then produces the outboxes of that whole
prefix, in offset order, with its changelog records and the input offset after it. A crash
before the commit re-runs only the records after the committed offset.

The partition's keyed state (`PartitionContext.state`) changes when a record completes, so the
next record of the same key sees it; the changelog gets the changes in the same transaction as
the offset. After a failure the owner discards the run (`close`) and starts a new one from the
committed offset and the restored state, so memory never runs ahead of Kafka for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from actors._commit import commit, produced
from actors.offsets import OffsetTracker
from actors.poison import PoisonRecord, oversized
from actors.records import Handler, Outbox, PartitionContext, PoisonHook
from podium.core.errors import TransientError
from podium.core.retry import backoff_delay, retry_transient

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What every partition run of one processor shares."""

    group: str
    handler: Handler
    on_poison: PoisonHook
    changelog: str | None
    max_attempts: int
    retry_backoff_s: float
    limit: Callable[[], int]
    """The largest record (bytes) a transaction may produce."""
    open_producer: Callable[[TopicPartition], Awaitable[AIOKafkaProducer]]
    """A started producer with the partition's transactional id."""
    on_release: Callable[[], None]
    """Called when records stop being held (committed or discarded)."""
    on_failure: Callable[[TopicPartition], None]
    """Called when the run cannot go on: the owner starts again from the committed offset."""
    on_fenced: Callable[[TopicPartition], None]
    """Called when another owner fenced the partition's producer."""


class PartitionRun:
    """The in-flight records of one partition, committed in prefix batches."""

    def __init__(
        self,
        config: RunConfig,
        *,
        tp: TopicPartition,
        producer: AIOKafkaProducer,
        state: dict[str, bytes],
        resets: int = 0,
    ) -> None:
        self._config = config
        self.tp = tp
        self.producer = producer
        self.context = PartitionContext(tp=tp, state=state)
        self.resets = resets
        """Failures in a row (the first records of this run wait a backoff after them)."""
        self._not_before = (
            time.monotonic()
            + backoff_delay(resets, base_delay_s=config.retry_backoff_s, max_delay_s=MAX_BACKOFF_S)
            if resets
            else 0.0
        )
        self._tracker = OffsetTracker()
        self._records: dict[int, ConsumerRecord[bytes, bytes]] = {}
        self._outboxes: dict[int, Outbox] = {}
        self._tails: dict[bytes | None, asyncio.Event] = {}
        self._steps: set[asyncio.Task[None]] = set()
        self._completed = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.fenced = False
        self._closed = False
        self._committer = asyncio.create_task(
            self._commit_loop(), name=f"{config.group}[{tp.partition}] commits"
        )

    @property
    def held(self) -> int:
        """Records taken in and not committed."""
        return self._tracker.held

    def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Run `record` (after the records of its key taken before it)."""
        if self.fenced or self._closed:
            return
        self._tracker.take(record.offset)
        self._records[record.offset] = record
        self._empty.clear()
        before = self._tails.get(record.key)
        done = asyncio.Event()
        self._tails[record.key] = done
        task = asyncio.create_task(self._step(record, before, done))
        self._steps.add(task)
        task.add_done_callback(self._steps.discard)

    async def drained(self) -> None:
        """Wait until every record taken in is committed."""
        await self._empty.wait()

    async def close(self) -> None:
        """Stop: records not committed are dropped (their transaction, if open, is aborted when
        the producer closes or the next owner starts one with the same transactional id)."""
        self._closed = True
        tasks = [*self._steps, self._committer]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._records.clear()
        self._outboxes.clear()
        self._tracker = OffsetTracker()
        self._empty.set()
        self._config.on_release()

    # -- running records ------------------------------------------------------------------------

    async def _step(
        self,
        record: ConsumerRecord[bytes, bytes],
        before: asyncio.Event | None,
        done: asyncio.Event,
    ) -> None:
        try:
            if before is not None:
                await before.wait()
            wait = self._not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            outbox = await self._run(record)
            for key, value in outbox.state.items():
                if value is None:
                    self.context.state.pop(key, None)
                else:
                    self.context.state[key] = value
            self._outboxes[record.offset] = outbox
            self._tracker.complete(record.offset)
            self._completed.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "%s[%d]@%d failed; starting again from the committed offset",
                self.tp.topic,
                self.tp.partition,
                record.offset,
            )
            self._fail()
        finally:
            done.set()
            if self._tails.get(record.key) is done:
                del self._tails[record.key]

    async def _run(self, record: ConsumerRecord[bytes, bytes]) -> Outbox:
        """The record's outbox: the handler's (retried a bounded number of times), or its dead
        letter when the handler keeps failing or its outputs are too large to produce."""
        config = self._config
        attempt = 0
        while True:
            attempt += 1
            try:
                outbox = await config.handler(record, self.context)
            except Exception as exc:
                if attempt >= config.max_attempts:
                    reason = f"the handler failed {attempt} attempts: {type(exc).__name__}: {exc}"
                    return self._poisoned(record, reason)
                log.warning(
                    "%s[%d]@%d: attempt %d failed (%s: %s); retrying",
                    self.tp.topic,
                    self.tp.partition,
                    record.offset,
                    attempt,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(
                    backoff_delay(
                        attempt, base_delay_s=config.retry_backoff_s, max_delay_s=MAX_BACKOFF_S
                    )
                )
                continue
            too_large = self._oversized(outbox)
            if too_large is not None:
                return self._poisoned(record, too_large)
            return outbox

    def _oversized(self, outbox: Outbox) -> str | None:
        records = produced(outbox, self._config.changelog, self.tp.partition)
        return oversized(records, self._config.limit())

    def _poisoned(self, record: ConsumerRecord[bytes, bytes], reason: str) -> Outbox:
        """The poison hook's outbox for `record` (its dead letter)."""
        log.error(
            "%s[%d]@%d cannot be processed; dead-lettered: %s",
            self.tp.topic,
            self.tp.partition,
            record.offset,
            reason,
        )
        outbox = self._config.on_poison(record, self.context, reason)
        too_large = self._oversized(outbox)
        if too_large is not None:
            raise RuntimeError(f"the dead letter of a record cannot be produced: {too_large}")
        return outbox

    def _fail(self) -> None:
        if not self._closed:
            self._closed = True
            self._config.on_failure(self.tp)

    # -- committing -----------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        try:
            while True:
                await self._completed.wait()
                self._completed.clear()
                while not self._closed and (offsets := self._tracker.committable()):
                    await self._commit(offsets)
                    self.resets = 0
        except asyncio.CancelledError:
            raise
        except ProducerFenced:
            log.warning("producer of %s[%d] was fenced", self.tp.topic, self.tp.partition)
            self.fenced = True
            for task in self._steps:
                task.cancel()
            self._config.on_fenced(self.tp)
        except Exception:
            log.exception(
                "committing %s[%d] failed; starting again from the committed offset",
                self.tp.topic,
                self.tp.partition,
            )
            self._fail()

    async def _commit(self, offsets: list[int]) -> None:
        """Commit the outboxes of `offsets` (a completed prefix) in one transaction; when that
        fails for good, one record at a time, a record that cannot be committed going to the
        DLQ (and the run starting again, as its state change is undone)."""
        config = self._config
        try:
            await retry_transient(
                lambda: self._transact(offsets),
                max_attempts=config.max_attempts,
                base_delay_s=config.retry_backoff_s,
                max_delay_s=MAX_BACKOFF_S,
            )
            return
        except PoisonRecord as exc:
            reason = exc.reason
        except TransientError as exc:
            reason = (
                f"the step's output could not be produced in {config.max_attempts} attempts: {exc}"
            )
        if len(offsets) > 1:
            for offset in offsets:
                if not self._closed:
                    await self._commit([offset])
            return
        (offset,) = offsets
        self._outboxes[offset] = self._poisoned(self._records[offset], reason)
        await self._transact(offsets)
        self._fail()

    async def _transact(self, offsets: list[int]) -> None:
        config = self._config
        try:
            await commit(
                self.producer,
                [self._outboxes[offset] for offset in offsets],
                changelog=config.changelog,
                group=config.group,
                tp=self.tp,
                offset=offsets[-1] + 1,
            )
        except ProducerFenced:
            raise
        except KafkaError as exc:
            # The same outboxes are committed again (the handlers do not run twice), on a fresh
            # producer: a failed transaction may leave the old one unusable.
            await self._reopen()
            if exc.retriable:
                raise TransientError(str(exc)) from exc
            raise PoisonRecord(f"the step's output could not be produced: {exc}") from exc
        self._tracker.committed(offsets[-1])
        for offset in offsets:
            self._records.pop(offset, None)
            self._outboxes.pop(offset, None)
        if self._tracker.held == 0:
            self._empty.set()
        self._config.on_release()

    async def _reopen(self) -> None:
        """Replace the producer (same transactional id) after a failed commit."""
        with contextlib.suppress(Exception):
            await self.producer.stop()
        self.producer = await self._config.open_producer(self.tp)
