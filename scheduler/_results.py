"""Which started tasks have ended: `podium.results`, followed from `task_timeout_s` ago.

Every replica follows every partition (no group): a schedule's runs may be anyone's after a
rebalance. Only the ids of ended tasks are kept, for as long as a run can be active.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition

from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode
from topics.kafka import make_consumer
from topics.messages import AnyResult, TaskCompleted, TaskFailed, utcnow
from topics.tables import partitions_of

log = logging.getLogger(__name__)


class EndedTasks:
    def __init__(self, kafka: KafkaSettings, topic: str, *, keep_s: float) -> None:
        self._kafka = kafka
        self._topic = topic
        self._keep = timedelta(seconds=keep_s)
        self._ended: dict[str, tuple[str, datetime]] = {}
        self._errors: dict[str, str] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []

    def status(self, task_id: str) -> tuple[str, datetime] | None:
        """(succeeded | failed, when) once the task has a result."""
        return self._ended.get(task_id)

    def outcome(self, task_id: str) -> tuple[str, datetime, str] | None:
        """(succeeded | failed, when, the error) once the task has a result."""
        ended = self._ended.get(task_id)
        return None if ended is None else (*ended, self._errors.get(task_id, ""))

    async def start(self) -> None:
        """Position every partition at `keep_s` ago and read up to the end."""
        self._tps = [
            TopicPartition(self._topic, p) for p in await partitions_of(self._kafka, self._topic)
        ]
        if not self._tps:
            return
        consumer = make_consumer(self._kafka, group_id=None, fetch_max_wait_ms=50)
        await consumer.start()
        self._consumer = consumer
        consumer.assign(self._tps)
        since_ms = int((utcnow() - self._keep).timestamp() * 1000)
        offsets = await consumer.offsets_for_times(dict.fromkeys(self._tps, since_ms))
        for tp in self._tps:
            found = offsets.get(tp)
            if found is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        ends = await consumer.end_offsets(self._tps)
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                await self.poll(timeout_ms=200)

    async def poll(self, timeout_ms: int = 0) -> None:
        if self._consumer is None or not self._tps:
            return
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=2000)
        for records in batches.values():
            for record in records:
                try:
                    result: AnyResult = decode(record.value, AnyResult)
                except MalformedMessage:
                    continue  # not ours to judge: the ledger dead-letters it
                status = "succeeded" if isinstance(result, TaskCompleted) else "failed"
                self._ended[result.task_id] = (status, result.finished_at)
                if isinstance(result, TaskFailed):
                    self._errors[result.task_id] = result.error
        cutoff = utcnow() - self._keep
        if len(self._ended) > 10_000:
            self._ended = {k: v for k, v in self._ended.items() if v[1] >= cutoff}
            self._errors = {k: v for k, v in self._errors.items() if k in self._ended}

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
