"""What the ingest loop makes of the records of one poll: pure functions, no Kafka, no database.

The records are decoded into `Incoming` events (or `Dead` ones, with the reason), split into
task-disjoint `Part`s that are stored concurrently, each in its own transaction, and planned ahead
on the chain heads that `HeadsCache` remembers. A record that cannot be stored becomes a
`message.dead_lettered` event of its task when its key names one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

import msgspec

from ledger.plan import Incoming, decode_event, decode_result, incoming
from ledger.store import PreparedBatch, prepare
from topics.codec import HEADER_TRACEPARENT, HEADER_TRACESTATE, MalformedMessage
from topics.dlq import Record, dead_lettered_event, dlq_topic

SERVICE = "ledger"

HEADS_CACHED = 200_000
"""Chain heads the reader remembers; a task it forgot costs one indexed lookup."""

Heads = Mapping[str, tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Dead:
    """A record that is dead-lettered instead of stored, and why."""

    record: Record
    reason: str


@dataclass(frozen=True, slots=True)
class Part:
    """Events of a batch whose tasks no other part has, and their plan if prepared ahead."""

    items: list[Incoming]
    prepared: PreparedBatch | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The parts of a record the dead-letter path needs, rebuilt from a decoded event."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def record_of(item: Incoming) -> StoredRecord:
    return StoredRecord(
        item.topic, item.partition, item.offset, item.event.task_id.encode(), item.body
    )


def trace_headers(headers: Iterable[tuple[str, bytes]] | None) -> tuple[tuple[str, bytes], ...]:
    """The W3C trace context among a record's headers."""
    return tuple(
        (key, value)
        for key, value in headers or ()
        if key in (HEADER_TRACEPARENT, HEADER_TRACESTATE) and value is not None
    )


def decode_records(
    records: Iterable[Record], results_topic: str
) -> tuple[list[Incoming], list[Dead]]:
    """The events of the records, in their order, and the records that do not decode."""
    items: list[Incoming] = []
    dead: list[Dead] = []
    for record in records:
        decoder = decode_result if record.topic == results_topic else decode_event
        try:
            items.append(
                decoder(
                    record.value,
                    record.topic,
                    record.partition,
                    record.offset,
                    trace_headers(record.headers),
                )
            )
        except MalformedMessage as exc:
            dead.append(Dead(record, exc.reason))
    return items, dead


def split(items: list[Incoming], writers: int) -> list[Part]:
    """Task-disjoint parts, each in arrival order (a task's chain is in one part); one part
    when the batch is too small to be worth splitting."""
    if writers == 1 or len(items) < 2 * writers:
        return [Part(items)] if items else []
    groups: list[list[Incoming]] = [[] for _ in range(writers)]
    for item in items:
        groups[hash(item.event.task_id) % writers].append(item)
    return [Part(group) for group in groups if group]


def prepare_parts(parts: Sequence[Part], assumed: Heads, cache: HeadsCache) -> list[Part]:
    """Each part planned on the heads its chains are assumed to have; the cache learns the
    heads the parts leave."""
    prepared = []
    for part in parts:
        plan = prepare(part.items, assumed)
        cache.remember(plan.plan.heads)
        prepared.append(Part(part.items, plan))
    return prepared


class HeadsCache:
    """Chain heads as the batches read so far leave them: bounded, a hint only (the writer
    checks them under its locks)."""

    def __init__(self, size: int = HEADS_CACHED) -> None:
        self._size = size
        self.heads: dict[str, tuple[int, str]] = {}

    def unknown(self, parts: Iterable[Part]) -> list[str]:
        """The tasks of the parts whose heads are not remembered."""
        return list({i.event.task_id for p in parts for i in p.items} - self.heads.keys())

    def remember(self, heads: Heads) -> None:
        """Learn heads; the oldest tenth is forgotten when the cache is full."""
        cache = self.heads
        cache.update(heads)
        if len(cache) > self._size:
            for task_id in list(islice(cache, len(cache) - self._size * 9 // 10)):
                del cache[task_id]


def dead_letter_event(record: Record, reason: str) -> Incoming | None:
    """A `message.dead_lettered` event for the task the record's key names, if it names one."""
    try:
        task_id = (record.key or b"").decode("utf-8")
        ev = dead_lettered_event(
            record,
            reason[:2000],
            dlq=dlq_topic(record.topic),
            task_id=task_id,
            source=SERVICE,
            check=True,
        )
    except (UnicodeDecodeError, msgspec.ValidationError):
        return None
    return incoming(ev, record.topic, record.partition, record.offset)
