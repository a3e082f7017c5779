"""The partitions of a topic, from the admin client (a group-less consumer's metadata knows only
what it is assigned)."""

from __future__ import annotations

from aiokafka import TopicPartition

from podium.core.settings import KafkaSettings
from topics.kafka import make_admin


async def partitions_of(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    """[] when the topic does not exist."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            return []
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [
        TopicPartition(topic, int(p["partition"]))
        for entry in described
        if entry.get("topic") == topic and entry.get("error_code", 0) == 0
        for p in sorted(entry.get("partitions", []), key=lambda p: int(p["partition"]))
    ]
