"""Reading the compacted manifests topic: every key's latest record, up to the end."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode
from topics.kafka import make_consumer
from topics.messages import ManifestRecord
from topics.tables import assign_from_beginning, partitions_of, read_to_end

log = logging.getLogger(__name__)

ROUTING_KIND = "RoutingTable"
"""The `kind` of compiled routing-table records (key `RoutingTable/<system>`)."""

Records = dict[str, ManifestRecord]


def record_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def manifest_consumer(kafka: KafkaSettings) -> AIOKafkaConsumer:
    """A group-less, read-committed consumer that answers quickly at the end of the topic."""
    return make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)


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
    return await read_to_end(
        consumer,
        tps,
        lambda message: apply_message(records, message.key, message.value),
        timeout_s=timeout_s,
    )


async def read_records(kafka: KafkaSettings, topic: str) -> Records:
    """The latest record of every key on the manifests topic ({} when it does not exist)."""
    partitions = await partitions_of(kafka, topic)
    if not partitions:
        return {}
    consumer = manifest_consumer(kafka)
    try:
        await consumer.start()
        records: Records = {}
        tps = await assign_from_beginning(consumer, topic, partitions)
        await read_until_end(consumer, tps, records)
        return records
    finally:
        await consumer.stop()


def resources_of(records: Records) -> list[dict[str, Any]]:
    """The applied resources (not the routing tables), in key order."""
    return [r.resource for k, r in sorted(records.items()) if r.kind != ROUTING_KIND]
