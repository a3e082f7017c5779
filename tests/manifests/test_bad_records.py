"""Invalid records produced straight onto the manifests topic (the attack of issue 12): every
reader keeps the valid resources, names the bad record in a log line and dead-letters it, and
`apply` of valid manifests still works."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from manifests._topic import record_key
from manifests.apply import apply_paths, digest_of
from manifests.watcher import CatalogWatcher
from podium.core.settings import KafkaSettings
from tests.conftest import OFFLINE_ENDPOINT
from tests.helpers import scaled
from topics.codec import decode, encode
from topics.dlq import dlq_topic
from topics.kafka import make_consumer, make_producer
from topics.messages import DeadLetter, ManifestRecord
from topics.names import TopicNames
from topics.tables import assign_from_beginning, partitions_of, read_to_end

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
PIPELINE = EXAMPLES / "research-pipeline"
OFFLINE = [
    PIPELINE / "agents.yaml",
    PIPELINE / "system.yaml",
    PIPELINE / "governance.yaml",
    OFFLINE_ENDPOINT,
]


def _record(kind: str, name: str, spec: dict[str, Any]) -> ManifestRecord:
    resource: dict[str, Any] = {
        "apiVersion": "orloj.dev/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    return ManifestRecord(
        kind=kind, name=name, generation=7, digest=digest_of(resource), resource=resource
    )


async def _produce(kafka: KafkaSettings, topic: str, items: list[tuple[str, bytes]]) -> None:
    """A plain producer, no transaction: what anyone with WRITE on the topic can do."""
    producer = make_producer(kafka)
    try:
        await producer.start()
        for key, value in items:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


def _bad(record: ManifestRecord) -> tuple[str, bytes]:
    return record_key(record.kind, record.name), encode(record)


BAD = [
    # references an endpoint that does not exist
    _bad(_record("Agent", "rogue", {"model_ref": "nowhere"})),
    # replaces a valid agent with one whose spec fails its own validation
    _bad(_record("Agent", "writer", {"model_ref": "mock", "limits": {"max_steps": "many"}})),
    _bad(_record("Gadget", "thing", {})),  # unknown kind
    ("Agent/junk", b"{not json"),  # does not decode
]


async def _dead_letters(kafka: KafkaSettings, topic: str, want: int) -> list[DeadLetter]:
    partitions = await partitions_of(kafka, topic)
    assert partitions, f"{topic} does not exist"
    consumer = make_consumer(kafka, group_id=None)
    letters: list[DeadLetter] = []
    try:
        await consumer.start()
        tps = await assign_from_beginning(consumer, topic, partitions)
        await read_to_end(
            consumer, tps, lambda m: letters.append(decode(m.value, DeadLetter)), timeout_s=30
        )
    finally:
        await consumer.stop()
    assert len({(d.partition, d.offset) for d in letters}) >= want, letters
    return letters


async def test_invalid_records_are_skipped_reported_and_dead_lettered(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.WARNING)
    assert (await apply_paths(kafka_settings, topic_names, OFFLINE)).ok
    assert (await apply_paths(kafka_settings, topic_names, [EXAMPLES / "supervisor"])).ok
    following = CatalogWatcher(kafka_settings, topic_names)
    await following.start()
    try:
        before = {r.key for r in following.catalog.resources()}
        assert len(before) >= 10 and "Agent/writer" in before
        await _produce(kafka_settings, topic_names.manifests, BAD)

        fresh = CatalogWatcher(kafka_settings, topic_names)
        await fresh.start()
        try:
            assert {r.key for r in fresh.catalog.resources()} == before
            assert fresh.catalog.agents["writer"] == following.catalog.agents["writer"]
        finally:
            await fresh.stop()

        letters = await _dead_letters(kafka_settings, dlq_topic(topic_names.manifests), 4)
        reasons = {(d.key or b"").decode(): d.reason for d in letters}
        assert set(reasons) == {"Agent/rogue", "Agent/writer", "Gadget/thing", "Agent/junk"}
        assert "nowhere" in reasons["Agent/rogue"]
        assert "max_steps" in reasons["Agent/writer"]
        assert "Gadget" in reasons["Gadget/thing"]
        assert all(d.topic == topic_names.manifests for d in letters)
        logged = [r.getMessage() for r in caplog.records]
        for letter in letters:
            where = f"{letter.topic}[{letter.partition}]@{letter.offset}"
            key = (letter.key or b"").decode()
            assert any(where in line and key in line for line in logged), (where, logged)

        # Not frozen: a valid apply still goes through and the running watcher sees it.
        changed = (PIPELINE / "agents.yaml").read_text().replace("max_steps: 8", "max_steps: 5")
        agents = tmp_path / "agents.yaml"
        agents.write_text(changed)
        report = await apply_paths(kafka_settings, topic_names, [agents])
        assert report.errors == []
        # The writer's latest record on the topic is the bad one: apply publishes it again.
        assert "Agent/writer" in report.changed and "Agent/researcher" in report.changed
        catalog = await following.wait_for(
            lambda c: c.agents["researcher"].spec.limits.max_steps == 5, timeout=scaled(30)
        )
        assert {r.key for r in catalog.resources()} == before
    finally:
        await following.stop()

    late = CatalogWatcher(kafka_settings, topic_names)
    try:
        await late.start()
        assert {r.key for r in late.catalog.resources()} == before
        assert late.catalog.agents["researcher"].spec.limits.max_steps == 5
    finally:
        await late.stop()
