"""Reading a compacted topic as a table: every assigned partition, from its beginning to its end.

The manifests, the approvals and the changelogs are compacted topics whose latest record per key
is the state. A reader assigns the partitions itself (no consumer group), seeks to the beginning
and folds each record into its table until every partition reaches the end offset it had when the
read began (with a read-committed consumer, the last stable offset).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from podium.core.settings import KafkaSettings
from topics.kafka import make_admin, make_consumer

Fold = Callable[[ConsumerRecord[bytes, bytes]], bool | None]
"""Applies one record to the table; True when it changed it."""


async def partitions_of(kafka: KafkaSettings, topic: str) -> list[int]:
    """The partition ids of `topic`; [] when it does not exist (it is never auto-created)."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            return []
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry.get("topic") == topic and entry.get("error_code", 0) == 0:
            return sorted(int(p["partition"]) for p in entry.get("partitions", []))
    return []


async def assign_from_beginning(
    consumer: AIOKafkaConsumer, topic: str, partitions: list[int]
) -> list[TopicPartition]:
    """Assign the given partitions of `topic` to `consumer`, positioned at their beginning."""
    if not partitions:
        return []
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def read_to_end(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    fold: Fold,
    *,
    timeout_s: float | None = None,
) -> bool:
    """Consume `tps` until each reaches its end offset, folding every record; True when a fold
    changed the table. TimeoutError when that takes longer than `timeout_s`."""
    if not tps:
        return False
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    remaining = {tp for tp in tps if await _position(consumer, tp) < ends[tp]}
    loop = asyncio.get_running_loop()
    deadline = None if timeout_s is None else loop.time() + timeout_s
    changed = False
    while remaining:
        if deadline is not None and loop.time() > deadline:
            raise TimeoutError(f"could not read {tps[0].topic} to its end in {timeout_s:.0f} s")
        batches = await consumer.getmany(*remaining, timeout_ms=200)
        for records in batches.values():
            for record in records:
                changed |= bool(fold(record))
        for tp in list(remaining):
            if await _position(consumer, tp) >= ends[tp]:
                remaining.discard(tp)
    return changed


async def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    position: Any = await consumer.position(tp)
    return int(position)


async def read_table(
    kafka: KafkaSettings,
    topic: str,
    fold: Fold,
    *,
    partitions: list[int] | None = None,
    timeout_s: float | None = None,
    **consumer_options: Any,
) -> bool:
    """Read `partitions` of `topic` (every one when None) from the beginning to their end with a
    consumer of its own, folding each record; True when a fold changed the table."""
    if partitions is None:
        partitions = await partitions_of(kafka, topic)
    if not partitions:
        return False
    consumer = make_consumer(kafka, group_id=None, **{"fetch_max_wait_ms": 50, **consumer_options})
    try:
        await consumer.start()
        tps = await assign_from_beginning(consumer, topic, partitions)
        return await read_to_end(consumer, tps, fold, timeout_s=timeout_s)
    finally:
        await consumer.stop()


async def read_latest(
    kafka: KafkaSettings, topic: str, *, partitions: list[int] | None = None
) -> dict[str, bytes]:
    """The latest value of each key of a compacted topic (a tombstone deletes its key)."""
    latest: dict[str, bytes] = {}

    def fold(record: ConsumerRecord[bytes, bytes]) -> None:
        key = (record.key or b"").decode()
        if record.value is None:
            latest.pop(key, None)
        else:
            latest[key] = record.value

    await read_table(kafka, topic, fold, partitions=partitions)
    return latest
