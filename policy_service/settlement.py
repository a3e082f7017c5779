"""Usage settlement: each `model.called` event replaces its call's budget reservation by the
usage the call actually had (`BudgetStore.settle`, once per event).

The consumer group's offsets are committed after a batch's events are settled; while the
database is down, settling retries (`podium.core.retry`, backoff from 0.2 s up to 5 s) and
nothing is committed past the event. A usage the database refuses as data (out of range) is
never retried: it is logged and passed over, as a malformed or out-of-bounds event is.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from podium.core.errors import TransientError
from podium.core.retry import RetryStopped, retry_transient
from policy_service.budgets import BudgetStore
from topics.codec import MalformedMessage, decode
from topics.messages import Event, EventType, ModelCalledData, payload_of

log = logging.getLogger(__name__)

SETTLE_BASE_DELAY_S = 0.2
SETTLE_MAX_DELAY_S = 5.0


class SettlementFailed(TransientError):
    """The budget store could not settle a usage event (the database is unreachable)."""


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
    return await _until_settled_or_stopped(
        lambda: store.settle(
            event_id=ev.event_id,
            request_id=usage.request_id,
            tokens=usage.input_tokens + usage.output_tokens,
            usd=usage.cost_usd,
        ),
        ev.event_id,
        stop,
    )


async def _until_settled_or_stopped(
    settle: Callable[[], Awaitable[object]], event_id: str, stop: asyncio.Event
) -> bool:
    """Retry `settle` (`podium.core.retry`) until it succeeds, True, or `stop`, False.

    Unbounded on purpose while the database is away: the offsets are not committed past an
    unsettled event, so giving up would lose the usage. A refusal of the data itself (SQLSTATE
    class 22) would fail the same way every time: it is logged and settled as nothing, True.
    A stop interrupts a wait between attempts at once; an attempt in flight is let finish (its
    transaction commits or rolls back, not cancelled midway).
    """

    async def attempt() -> None:
        try:
            await settle()
        except asyncpg.DataError:
            raise
        except Exception as exc:  # the database is down: retry, do not commit past it
            raise SettlementFailed(f"settling {event_id} failed: {exc}") from exc

    def on_retry(_attempt: int, error: TransientError, delay_s: float) -> None:
        log.warning("%s; retrying in %.1f s", error, delay_s, exc_info=error.__cause__)

    try:
        await retry_transient(
            attempt,
            max_attempts=sys.maxsize,
            base_delay_s=SETTLE_BASE_DELAY_S,
            max_delay_s=SETTLE_MAX_DELAY_S,
            on_retry=on_retry,
            stop=stop,
        )
    except RetryStopped:
        return False
    except asyncpg.DataError as exc:
        log.error("usage event %s cannot be settled, passed over: %s", event_id, exc)
    return True
