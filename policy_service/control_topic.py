"""`podium.controls` on Kafka: creating it, reading it as a table, writing a control.

The operator writes (`podium pause|resume|throttle`, `write_control`); every policy replica
follows the topic (`control_follower.py`) and one records each control as an event
(`control_recorder.py`). One partition: controls are few, and one log keeps them in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiokafka import ConsumerRecord

from podium.core.settings import KafkaSettings
from policy_service.controls import ControlBook
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.kafka import ensure_topics, make_producer
from topics.messages import Control
from topics.names import TopicNames
from topics.tables import read_table

log = logging.getLogger(__name__)


async def ensure_controls_topic(kafka: KafkaSettings, names: TopicNames) -> None:
    await ensure_topics(kafka, [names.controls], compacted=[names.controls], partitions=1)


def decode_control(record: ConsumerRecord[bytes, bytes]) -> Control | None:
    """The control a record holds: None for a tombstone; MalformedMessage when it does not
    decode or its key is not its target (compaction keeps the key's latest record)."""
    if record.value is None:
        return None
    control: Control = decode(record.value, Control)
    key = (record.key or b"").decode(errors="replace")
    if key != control.target:
        raise MalformedMessage(f"key {key!r} is not the control's target {control.target!r}")
    return control


def fold_into(book: ControlBook) -> Callable[[ConsumerRecord[bytes, bytes]], None]:
    """Applies a controls record to `book`; an unreadable record is logged and changes nothing."""

    def fold(record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            control = decode_control(record)
        except MalformedMessage as exc:
            log.warning(
                "controls %s[%d]@%d skipped: %s",
                record.topic,
                record.partition,
                record.offset,
                exc.reason,
            )
            return
        target = (record.key or b"").decode(errors="replace")
        book.apply(target, control, record.partition, record.offset)

    return fold


async def read_controls(kafka: KafkaSettings, names: TopicNames) -> ControlBook:
    """The controls in force now (the whole topic, read to its end)."""
    book = ControlBook()
    await read_table(kafka, names.controls, fold_into(book))
    return book


async def write_control(kafka: KafkaSettings, names: TopicNames, control: Control) -> None:
    """Publish `control` under its target, acknowledged by every in-sync replica."""
    await ensure_controls_topic(kafka, names)
    producer = make_producer(kafka)
    try:
        await producer.start()
        await producer.send_and_wait(
            names.controls,
            key=control.target.encode(),
            value=encode(control),
            headers=headers_for(control),
        )
    finally:
        await producer.stop()
