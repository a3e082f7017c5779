"""The policy service resumes a parked step when a trusted decision on its approval arrives.

Deciders (the ledger API, `podium approve|deny`, this service's expiry) write only the signed
`ApprovalDecision` to `podium.approvals`. The replicas of the policy service consume that topic in
one group (`<p>.policy.approvals`); for a decision the book counts (the first decision on a
parked approval that a trusted approver key signed, `approval_book.py`), the owner of the
partition writes the `approval.granted|denied|expired` event and the resumed step to the agent's
inbox in ONE Kafka transaction with the consumed offset. So each counted decision resumes its
step exactly once, across crashes and rebalances, and a decision nobody trusted, or a second
decision, resumes nothing: deciders need no write access to agent inboxes or to the events.

Fencing as in the actors' loop: each input partition p has one transactional producer with the
stable id `<p>.approvals.resume.<p>`; a new owner starts it first (which aborts a zombie's open
transaction) and then reads the committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import ProducerFenced

from podium.core.settings import KafkaSettings
from policy_service.approval_book import ApprovalBook
from policy_service.approval_follower import ApprovalFollower
from policy_service.approvals import decode_record, resumption
from topics.codec import MalformedMessage, encode, headers_for
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import ApprovalDecision
from topics.names import TopicNames

log = logging.getLogger(__name__)

_BOOK_WAIT_S = 30.0
"""How long a decision waits for the book to have read it (the book follows the same topic)."""
_RETRY_PAUSE_S = 1.0
"""The pause before a decision whose resumption failed is read again."""


def counted(book: ApprovalBook, decision: ApprovalDecision) -> bool:
    """True when `decision` is the one the book counts for its approval (so it resumes)."""
    entry = book.get(decision.approval_id)
    return entry is not None and entry.decision == decision


class ApprovalResumer:
    """Consumes `podium.approvals` in the policy service's approvals group and resumes the steps
    of counted decisions."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames, follower: ApprovalFollower) -> None:
        self._kafka = kafka
        self._names = names
        self._follower = follower
        self._group = f"{names.policy_group}.approvals"
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self._lock = asyncio.Lock()
        self._inboxes: set[str] = set()
        self.consumer: AIOKafkaConsumer = make_consumer(
            kafka, group_id=self._group, enable_auto_commit=False
        )

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self._names.approvals}.resume.{tp.partition}"

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe([self._names.approvals], listener=_Listener(self))

    async def stop(self) -> None:
        async with self._lock:
            for tp in list(self._producers):
                await self._close(tp)
        await self.consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        failed = False
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=200)
            async with self._lock:  # a rebalance waits for the batch in hand
                for tp, records in batches.items():
                    producer = self._producers.get(tp)
                    if producer is None:  # revoked meanwhile: its new owner reads them again
                        continue
                    for record in records:
                        try:
                            await self._resume(tp, producer, record)
                        except ProducerFenced:  # a new owner took the partition
                            await self._close(tp)
                            break
                        except Exception as exc:  # read the record again, after a pause
                            log.warning("resuming %s@%d failed: %r", tp, record.offset, exc)
                            self.consumer.seek(tp, record.offset)
                            failed = True
                            break
            if failed:
                failed = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_RETRY_PAUSE_S):
                        await stop.wait()

    async def _resume(
        self, tp: TopicPartition, producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        try:
            decision = decode_record(record.value)
        except MalformedMessage:
            decision = None
        sends = []
        if isinstance(decision, ApprovalDecision):
            await self._follower.applied(tp.partition, record.offset, timeout_s=_BOOK_WAIT_S)
            book = self._follower.book
            if counted(book, decision):
                entry = book.get(decision.approval_id)
                assert entry is not None
                ev, step = resumption(entry, decision)
                inbox = self._names.agent(entry.request.agent)
                if inbox not in self._inboxes:  # one admin round trip per inbox, not per step
                    await ensure_topics(self._kafka, [inbox])
                    self._inboxes.add(inbox)
                key = decision.task_id.encode()
                sends = [
                    (self._names.events, key, encode(ev), headers_for(ev)),
                    (inbox, key, encode(step), headers_for(step)),
                ]
        async with producer.transaction():
            for topic, key, value, headers in sends:
                await producer.send(topic, key=key, value=value, headers=headers)
            await producer.send_offsets_to_transaction({tp: record.offset + 1}, self._group)
        if sends:
            assert isinstance(decision, ApprovalDecision)
            log.info("approval %s %s: step resumed", decision.approval_id, decision.decision)

    async def _assign(self, assigned: list[TopicPartition]) -> None:
        async with self._lock:
            for tp in assigned:
                if tp in self._producers:
                    continue
                producer = make_producer(self._kafka, transactional_id=self.transactional_id(tp))
                await producer.start()  # fences the previous owner's transactions first
                self._producers[tp] = producer
                committed = await self.consumer.committed(tp)
                if committed is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            for tp in revoked:
                await self._close(tp)

    async def _close(self, tp: TopicPartition) -> None:
        producer = self._producers.pop(tp, None)
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ApprovalResumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._owner._assign(list(assigned))
