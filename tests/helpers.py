"""Helpers for tests against the real stack: poll with a deadline instead of sleeping.

- `wait_until(predicate, timeout=..., interval=...)`: poll a sync or async predicate until it is
  truthy; return its value, or raise `AssertionError` naming the predicate at the deadline.
- `consume_until(settings, topic, n, timeout=...)`: read at least `n` records of `topic` from the
  beginning (read_committed, a throwaway group) and return them.
- `consume_decoded(settings, topic, n, type_, timeout=...)`: the same, decoded with
  `topics.codec.decode` into `type_`.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import ConsumerRecord

from podium.core.settings import KafkaSettings
from topics.codec import decode
from topics.kafka import make_consumer

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 30.0,  # noqa: ASYNC109 (a deadline for the polling, not an I/O timeout)
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout} s: {what}")
        await asyncio.sleep(interval)


async def consume_until(
    settings: KafkaSettings,
    topic: str,
    n: int,
    timeout: float = 30.0,  # noqa: ASYNC109 (a deadline for the polling, not an I/O timeout)
    **consumer_options: Any,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `topic` from the beginning until `n` records arrived (read_committed), or fail."""
    consumer = make_consumer(
        settings,
        topic,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        fetch_max_wait_ms=100,
        **consumer_options,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < n:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"only {len(records)} of {n} records arrived on {topic} within {timeout} s"
                )
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def consume_decoded(
    settings: KafkaSettings,
    topic: str,
    n: int,
    type_: type[T],
    timeout: float = 30.0,  # noqa: ASYNC109
) -> list[T]:
    """`consume_until`, each value decoded into `type_` with the project's codec."""
    return [decode(r.value, type_) for r in await consume_until(settings, topic, n, timeout)]
