"""The one compacted-table reader: every state topic (manifests, approvals, changelogs, the
scheduler's state) is read back with `topics.tables`."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from podium.core.settings import KafkaSettings
from topics.kafka import ensure_topics, make_producer
from topics.names import TopicNames
from topics.tables import read_latest, read_table

pytestmark = pytest.mark.integration


async def _write(
    kafka: KafkaSettings, topic: str, records: list[tuple[int, bytes, bytes | None]]
) -> None:
    """Commit `records` (partition, key, value) in one transaction, as the services write state."""
    producer = make_producer(kafka, transactional_id=f"{topic}-writer")
    try:
        await producer.start()
        async with producer.transaction():
            for partition, key, value in records:
                await producer.send(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


async def test_latest_value_per_key_with_tombstones_and_chosen_partitions(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    topic = f"{topic_names.prefix}.table"
    await ensure_topics(kafka_settings, [topic], compacted=[topic], partitions=2)
    await _write(
        kafka_settings,
        topic,
        [
            (0, b"a", b"1"),
            (0, b"a", b"2"),
            (0, b"gone", b"x"),
            (0, b"gone", None),
            (1, b"b", b"3"),
        ],
    )

    assert await read_latest(kafka_settings, topic) == {"a": b"2", "b": b"3"}
    assert await read_latest(kafka_settings, topic, partitions=[1]) == {"b": b"3"}


async def test_a_missing_topic_is_an_empty_table(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    assert await read_latest(kafka_settings, f"{topic_names.prefix}.never-made") == {}


async def test_read_table_reports_whether_a_fold_changed_the_table(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    topic = f"{topic_names.prefix}.folds"
    await ensure_topics(kafka_settings, [topic], compacted=[topic], partitions=1)
    await _write(kafka_settings, topic, [(0, b"k", b"same"), (0, b"k", b"same")])
    seen: list[int] = []

    def no_change(record: ConsumerRecord[bytes, bytes]) -> bool:
        seen.append(record.offset)
        return False

    assert await read_table(kafka_settings, topic, no_change) is False
    assert len(seen) == 2
    assert await read_table(kafka_settings, topic, lambda _record: True) is True
