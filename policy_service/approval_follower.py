"""The policy service's approvals book, kept current by following the whole approvals topic.

Every replica reads every partition of `podium.approvals` (no group, from the beginning), so
any replica can check the approval a resumed step carries. `caught_up` waits until the book has
read up to the topic's current end: a resumed step can arrive before this replica has read the
decision that resumed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from podium.core.settings import KafkaSettings
from policy_service.approval_book import ApprovalBook, ApprovalEntry
from policy_service.approvals import decode_record
from policy_service.keys import VerifyKeys
from topics.codec import MalformedMessage
from topics.messages import AuthorizationRequest, utcnow
from topics.names import TopicNames
from topics.tables import assign_from_beginning, partitions_of

log = logging.getLogger(__name__)


class ApprovalFollower:
    """Follows `podium.approvals` into `book` with the consumer given to `start`."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames, trusted: VerifyKeys) -> None:
        self._kafka = kafka
        self._names = names
        self.book = ApprovalBook(trusted)
        self.partitions: list[TopicPartition] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[int, int] = {}
        self._advanced = asyncio.Event()

    async def start(self, consumer: AIOKafkaConsumer) -> None:
        """Assign every partition of the topic to the (started) consumer, from the beginning."""
        topic = self._names.approvals
        partitions = await partitions_of(self._kafka, topic)
        self.partitions = await assign_from_beginning(consumer, topic, partitions)
        self._consumer = consumer

    async def follow(self, stop: asyncio.Event) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for tp, records in batches.items():
                for record in records:
                    try:
                        self.book.apply(decode_record(record.value), tp.partition)
                    except MalformedMessage as exc:
                        log.warning(
                            "approvals %s[%d]@%d unreadable: %s",
                            tp.topic,
                            tp.partition,
                            record.offset,
                            exc.reason,
                        )
                    self._positions[tp.partition] = record.offset + 1
            for tp in self.partitions:
                position = await consumer.position(tp)
                if position > self._positions.get(tp.partition, 0):
                    self._positions[tp.partition] = position
            self._advanced.set()

    async def caught_up(self, *, timeout_s: float) -> None:
        """Return once the book has read up to the end offsets of now; TimeoutError after
        `timeout_s`."""
        consumer = self._consumer
        assert consumer is not None, "start() first"
        ends = await consumer.end_offsets(self.partitions or list(consumer.assignment()))
        async with asyncio.timeout(timeout_s):
            while any(self._positions.get(tp.partition, 0) < end for tp, end in ends.items()):
                self._advanced.clear()
                await self._advanced.wait()

    async def applied(self, partition: int, offset: int, *, timeout_s: float) -> None:
        """Return once the book has read the record at `offset` of `partition`; TimeoutError
        after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while self._positions.get(partition, 0) <= offset:
                self._advanced.clear()
                await self._advanced.wait()

    async def entry_for(self, request: AuthorizationRequest) -> ApprovalEntry | None:
        """The book's entry for the approval `request` carries; when the book has no decision
        for it yet, catches up first (within the request's deadline)."""
        approval_id = request.approval_id or ""
        entry = self.book.get(approval_id)
        if entry is None or entry.decision is None:
            remaining = (request.deadline - utcnow()).total_seconds()
            if self._consumer is not None and remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await self.caught_up(timeout_s=remaining)
            entry = self.book.get(approval_id)
        return entry
