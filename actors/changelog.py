"""A partition's keyed state, read back from its compacted changelog partition."""

from __future__ import annotations

from aiokafka import TopicPartition

from podium.core.settings import KafkaSettings
from topics.kafka import make_consumer


async def read_changelog(kafka: KafkaSettings, source: TopicPartition) -> dict[str, bytes]:
    """Read `source` from the beginning to its end; the last value of each key (a tombstone
    deletes it)."""
    reader = make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)
    state: dict[str, bytes] = {}
    try:
        await reader.start()
        reader.assign([source])
        await reader.seek_to_beginning(source)
        end = (await reader.end_offsets([source]))[source]
        while await reader.position(source) < end:
            batch = await reader.getmany(source, timeout_ms=200)
            for record in batch.get(source, []):
                key = (record.key or b"").decode()
                if record.value is None:
                    state.pop(key, None)
                else:
                    state[key] = record.value
    finally:
        await reader.stop()
    return state
