"""Each control on `podium.controls` becomes a `control.paused|resumed|throttled` event.

The policy replicas share the consumer group `<p>.policy.controls`, so one of them records each
record; the group's offset is committed after the events are acknowledged, and an event's id is
the record's position (`control:<partition>:<offset>`), so a record recorded twice (a crash before
the commit) is stored once by the ledger. Controls written while no policy replica runs are
recorded when one starts. The operator writes the controls only: events come from the services.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from policy_service.control_topic import decode_control
from topics.codec import MalformedMessage, encode, headers_for
from topics.messages import ControlChangedData, Event, EventType, event, event_id_of
from topics.names import TopicNames

log = logging.getLogger(__name__)

_EVENT_TYPES = {
    "paused": EventType.CONTROL_PAUSED,
    "resumed": EventType.CONTROL_RESUMED,
    "throttled": EventType.CONTROL_THROTTLED,
}


def control_event(record: ConsumerRecord[bytes, bytes]) -> Event:
    """The event of one controls record (a tombstone is a resume by someone unknown); its task
    id is `control:<kind>:<name>` (no `/`, which a URL path would split), so a target's
    controls form one audit trail in the ledger.
    MalformedMessage for a record that is no control."""
    control = decode_control(record)
    target = (record.key or b"").decode(errors="replace")
    kind, _, name = target.partition("/")
    if control is None:
        data = ControlChangedData(target=target, partition=record.partition, offset=record.offset)
        state = "resumed"
    else:
        data = ControlChangedData(
            target=target,
            per_minute=control.per_minute,
            reason=control.reason,
            set_by=control.set_by,
            set_at=control.set_at,
            partition=record.partition,
            offset=record.offset,
        )
        state = control.state
    try:
        return event(
            data,
            type=_EVENT_TYPES[state],
            event_id=event_id_of("control", record.partition, record.offset),
            task_id=f"control:{kind}:{name}",
            system=name if kind == "system" else "",
            agent=name if kind == "agent" else "",
            source="policy",
            check=True,
        )
    except msgspec.ValidationError as exc:  # a tombstone's key is not checked by decoding
        raise MalformedMessage(f"key {target!r} names no target: {exc}") from None


async def record_controls(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, names: TopicNames, stop: asyncio.Event
) -> None:
    """Record the controls the (subscribed) consumer reads as events, until `stop`."""
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=100)
        for records in batches.values():
            for record in records:
                try:
                    ev = control_event(record)
                except MalformedMessage as exc:
                    log.warning(
                        "controls %s[%d]@%d not recorded: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        exc.reason,
                    )
                    continue
                await producer.send_and_wait(
                    names.events, key=ev.task_id.encode(), value=encode(ev), headers=headers_for(ev)
                )
                log.info("control %s: %s by %s", ev.data["target"], ev.type, ev.data["set_by"])
        if batches:
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})
