"""Usage settlement: each `model.called` event replaces its call's budget reservation by the
usage the call actually had (`BudgetStore.settle`, once per event).

The consumer group's offsets are committed after a batch's events are settled; while the
database is down, settling retries and nothing is committed past the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from policy_service.budgets import BudgetStore
from topics.codec import MalformedMessage, decode
from topics.messages import Event, EventType, ModelCalledData, payload_of

log = logging.getLogger(__name__)


async def settle_usage(consumer: AIOKafkaConsumer, store: BudgetStore, stop: asyncio.Event) -> None:
    """Settle the usage events of the (subscribed) consumer until `stop`."""
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=200, max_records=500)
        settled = True
        for records in batches.values():
            for record in records:
                settled = settled and await _settle_one(record, store, stop)
        if batches and settled:
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})


async def _settle_one(record: ConsumerRecord, store: BudgetStore, stop: asyncio.Event) -> bool:
    """Apply one event's usage; False only when stopped before it could be applied."""
    try:
        ev: Event = decode(record.value, Event)
    except MalformedMessage as exc:
        # The ledger dead-letters unreadable events; here it only cannot be a usage event.
        log.warning(
            "event %s[%d]@%d unreadable: %s",
            record.topic,
            record.partition,
            record.offset,
            exc.reason,
        )
        return True
    if ev.type != EventType.MODEL_CALLED:
        return True
    try:
        usage = payload_of(ev, ModelCalledData)
    except msgspec.ValidationError as exc:
        log.warning("model.called event %s has a bad payload: %s", ev.event_id, exc)
        return True
    delay = 0.2
    while not stop.is_set():
        try:
            await store.settle(
                event_id=ev.event_id,
                request_id=usage.request_id,
                tokens=usage.input_tokens + usage.output_tokens,
                usd=usage.cost_usd,
            )
            return True
        except Exception:  # the database is down: retry, do not commit past it
            log.exception("settling %s failed; retrying in %.1f s", ev.event_id, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, 5.0)
    return False
