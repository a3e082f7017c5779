"""Any Kafka client can submit a task by hand; malformed bytes are rejected naming the field."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from podium.core.settings import KafkaSettings
from tests.helpers import consume_until
from topics.codec import MalformedMessage, decode
from topics.kafka import connection_options, ensure_topics
from topics.messages import SCHEMA_VERSION, TaskRequested
from topics.names import TopicNames

HAND_WRITTEN = [
    b'{"task_id": "by-hand-1", "system": "research-pipeline", "input": "Write about Kafka"}',
    b'{"task_id": "by-hand-2", "system": "research-pipeline", "input": {"topic": "KRaft"},'
    b' "timeout_s": 60, "labels": {"team": "platform"}, "schema_version": 1}',
]


@pytest.mark.integration
async def test_raw_aiokafka_producer_hand_written_json_is_accepted(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    await ensure_topics(kafka_settings, [topic_names.tasks])
    producer = AIOKafkaProducer(**connection_options(kafka_settings))
    try:
        await producer.start()
        for raw in HAND_WRITTEN:
            task_id = json.loads(raw)["task_id"]
            await producer.send_and_wait(topic_names.tasks, raw, key=task_id.encode())
        bad = b'{"task_id": "by-hand-3", "system": 7, "input": "x"}'
        await producer.send_and_wait(topic_names.tasks, bad, key=b"by-hand-3")
    finally:
        await producer.stop()

    records = await consume_until(kafka_settings, topic_names.tasks, 3)
    by_key = {r.key: r.value for r in records}
    first: TaskRequested = decode(by_key[b"by-hand-1"], TaskRequested)
    assert (first.task_id, first.system, first.input) == (
        "by-hand-1",
        "research-pipeline",
        "Write about Kafka",
    )
    assert first.schema_version == SCHEMA_VERSION
    second: TaskRequested = decode(by_key[b"by-hand-2"], TaskRequested)
    assert second.input == {"topic": "KRaft"}
    assert second.timeout_s == 60
    assert second.labels == {"team": "platform"}
    with pytest.raises(MalformedMessage, match=r"\$\.system"):
        decode(by_key[b"by-hand-3"], TaskRequested)


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        pytest.param(b'{"task_id": "t", "system": 7, "input": "x"}', "system", id="wrong-type"),
        pytest.param(b'{"task_id": "t", "input": "x"}', "system", id="missing-field"),
        pytest.param(
            b'{"task_id": "t", "system": "s", "input": "x", "priority": 1}',
            "priority",
            id="unknown-field",
        ),
        pytest.param(b'{"task_id": "t", "system": ', "JSON", id="bad-json"),
        pytest.param(
            json.dumps({"task_id": "x" * 201, "system": "s", "input": "x"}).encode(),
            "task_id",
            id="task-id-too-long",
        ),
        pytest.param(
            b'{"task_id": "t", "system": "s", "input": "x", "schema_version": 99}',
            "schema_version",
            id="unknown-schema-version",
        ),
        pytest.param(b'{"task_id": "t", "system": "s", "input": 3}', "input", id="input-number"),
        pytest.param(
            b'{"task_id": "bad id", "system": "s", "input": "x"}', "task_id", id="pattern"
        ),
    ],
)
def test_malformed_task_requested_is_rejected_naming_the_field(raw: bytes, names: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode(raw, TaskRequested)
    assert names in caught.value.reason


def test_null_value_is_rejected() -> None:
    with pytest.raises(MalformedMessage, match="null"):
        decode(None, TaskRequested)
