"""Exactly-once building block: a transaction's messages are seen only when it commits."""

from __future__ import annotations

import pytest

from podium.core.settings import KafkaSettings
from tests.helpers import consume_decoded
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_producer
from topics.messages import TaskRequested
from topics.names import TopicNames

pytestmark = pytest.mark.integration


class Aborted(Exception):
    pass


async def test_read_committed_consumer_sees_only_committed_transactions(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    topic = topic_names.tasks
    await ensure_topics(kafka_settings, [topic])
    committed = TaskRequested(task_id="committed-1", system="research", input="hello")
    aborted = TaskRequested(task_id="aborted-1", system="research", input={"q": "never seen"})
    after = TaskRequested(task_id="committed-2", system="research", input="after the abort")

    producer = make_producer(kafka_settings, transactional_id=f"{topic_names.prefix}-tx")
    try:
        await producer.start()
        async with producer.transaction():
            await producer.send_and_wait(
                topic, encode(committed), key=b"committed-1", headers=headers_for(committed)
            )
        with pytest.raises(Aborted):
            async with producer.transaction():
                await producer.send_and_wait(
                    topic, encode(aborted), key=b"aborted-1", headers=headers_for(aborted)
                )
                raise Aborted
        async with producer.transaction():
            await producer.send_and_wait(topic, encode(after), key=b"committed-2")
    finally:
        await producer.stop()

    seen = await consume_decoded(kafka_settings, topic, 2, TaskRequested)
    assert sorted(m.task_id for m in seen) == ["committed-1", "committed-2"]
    assert next(m for m in seen if m.task_id == "committed-1") == committed
