"""Dead letters: what a consumer writes for a record it cannot process, and the event that says so.

A record that does not decode, or a step that failed for good, goes to `<topic>.dlq` as a
`DeadLetter` (the original bytes and the reason); the task's audit trail gets a
`message.dead_lettered` event when the record's key names a task. Every consumer builds both here,
then commits the record: a dead letter is never retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from topics.codec import headers_dict
from topics.messages import DeadLetter, Event, MessageDeadLetteredData, event, event_id_of


class Record(Protocol):
    """The parts of a consumed Kafka record a dead letter keeps (aiokafka's ConsumerRecord)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}.dlq"


def dead_letter(record: Record, reason: str, *, service: str) -> DeadLetter:
    """The dead letter of a record `service` could not process, for `dlq_topic(record.topic)`."""
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers=headers_dict(record.headers),
        reason=reason,
        service=service,
    )


def dead_lettered_event(
    record: Record, reason: str, *, dlq: str, task_id: str, source: str, check: bool = False
) -> Event:
    """The `message.dead_lettered` event of a record sent to `dlq`, on the task its key names.

    Its id is the record's position, so a record dead-lettered twice (a redelivery) is stored
    once. `check=True` validates the envelope (a key need not be a valid task id)."""
    return event(
        MessageDeadLetteredData(
            topic=record.topic,
            dlq_topic=dlq,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        ),
        event_id=event_id_of("dlq", record.topic, record.partition, record.offset),
        task_id=task_id,
        source=source,
        check=check,
    )
