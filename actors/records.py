"""What a handler of the transactional loop (`actors.transactions`) sees and returns: its
partition's context, and the outbox of records to produce and state changes to make, atomically
with the consumption of its input record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord, TopicPartition

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One message to produce inside the transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    partition: int | None = None


@dataclass(slots=True)
class Outbox:
    """What a handler wants done, atomically with the consumption of its input record."""

    records: list[OutRecord] = field(default_factory=list)
    state: dict[str, bytes | None] = field(default_factory=dict)
    """Changes to the partition's keyed state (None deletes); written to the changelog."""

    def add(self, record: OutRecord) -> None:
        self.records.append(record)


@dataclass(slots=True)
class PartitionContext:
    """What a handler sees of its partition: its number and its restored keyed state."""

    tp: TopicPartition
    state: dict[str, bytes] = field(default_factory=dict)


Handler = Callable[[ConsumerRecord[bytes, bytes], PartitionContext], Awaitable[Outbox]]
PoisonHook = Callable[[ConsumerRecord[bytes, bytes], PartitionContext, str], Outbox]
"""The outbox of a record that cannot be processed (its dead letter), given the reason."""
