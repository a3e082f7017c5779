"""The policy service's controls book, kept current by following `podium.controls`.

Every replica reads the whole topic (no group, from the beginning): `start` reads it to its end
before the service decides anything, so a replica that starts while a target is paused never
allows its calls; `follow` then applies each new control as it comes (within a fetch, 100 ms).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from podium.core.settings import KafkaSettings
from policy_service.control_topic import fold_into
from policy_service.controls import ControlBook
from topics.names import TopicNames
from topics.tables import assign_from_beginning, partitions_of, read_to_end

_START_TIMEOUT_S = 60.0
"""How long `start` may take to read the topic to its end (then the service does not start)."""


class ControlFollower:
    """Follows `podium.controls` into `book` with the consumer given to `start`."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames) -> None:
        self._kafka = kafka
        self._names = names
        self.book = ControlBook()
        self._fold = fold_into(self.book)
        self._consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []

    async def start(self, consumer: AIOKafkaConsumer) -> None:
        """Assign the topic to the (started) consumer and read it to its end."""
        topic = self._names.controls
        partitions = await partitions_of(self._kafka, topic)
        self.partitions = await assign_from_beginning(consumer, topic, partitions)
        self._consumer = consumer
        await read_to_end(consumer, self.partitions, self._fold, timeout_s=_START_TIMEOUT_S)

    async def follow(self, stop: asyncio.Event) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    self._fold(record)
