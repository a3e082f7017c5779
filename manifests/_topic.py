"""Reading the compacted manifests topic: every key's latest record, up to the end."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode
from topics.kafka import make_admin, make_consumer
from topics.messages import ManifestRecord

log = logging.getLogger(__name__)

ROUTING_KIND = "RoutingTable"
"""The `kind` of compiled routing-table records (key `RoutingTable/<system>`)."""

Records = dict[str, ManifestRecord]


def record_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def manifest_consumer(kafka: KafkaSettings) -> AIOKafkaConsumer:
    """A group-less, read-committed consumer that answers quickly at the end of the topic."""
    return make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)


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


async def assign_all(
    consumer: AIOKafkaConsumer, topic: str, partitions: list[int]
) -> list[TopicPartition]:
    """Assign the given partitions of `topic`, from the beginning."""
    if not partitions:
        return []
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


def apply_message(records: Records, key: bytes | None, value: bytes | None) -> bool:
    """Fold one message into `records`; True when it changed them."""
    if key is None:
        log.warning("ignoring a manifests record without a key")
        return False
    name = key.decode(errors="replace")
    if value is None:
        return records.pop(name, None) is not None
    try:
        record: ManifestRecord = decode(value, ManifestRecord)
    except MalformedMessage as exc:
        log.error("ignoring manifests record %s: %s", name, exc.reason)
        return False
    previous = records.get(name)
    records[name] = record
    return previous is None or previous.digest != record.digest


async def read_until_end(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    records: Records,
    *,
    timeout_s: float = 30.0,
) -> bool:
    """Consume until every partition reaches its end offset (the last stable offset)."""
    if not tps:
        return False
    changed = False
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await _behind(consumer, ends):
        if loop.time() > deadline:
            raise TimeoutError(f"could not read {tps[0].topic} to its end in {timeout_s:.0f} s")
        batches = await consumer.getmany(*tps, timeout_ms=200)
        for messages in batches.values():
            for message in messages:
                changed |= apply_message(records, message.key, message.value)
    return changed


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        position: Any = await consumer.position(tp)
        if int(position) < end:
            return True
    return False


async def read_records(kafka: KafkaSettings, topic: str) -> Records:
    """The latest record of every key on the manifests topic ({} when it does not exist)."""
    partitions = await partitions_of(kafka, topic)
    if not partitions:
        return {}
    consumer = manifest_consumer(kafka)
    await consumer.start()
    try:
        records: Records = {}
        tps = await assign_all(consumer, topic, partitions)
        await read_until_end(consumer, tps, records)
        return records
    finally:
        await consumer.stop()


def resources_of(records: Records) -> list[dict[str, Any]]:
    """The applied resources (not the routing tables), in key order."""
    return [r.resource for k, r in sorted(records.items()) if r.kind != ROUTING_KIND]
