"""Fixtures of the bad-input tests: the actor tests' in-process runtime (policy, dispatcher,
actors, collector), and helpers to produce bad records and find what became of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from podium.core.settings import KafkaSettings
from tests.actors.conftest import Runtime, runtime  # noqa: F401  (the `runtime` fixture)
from tests.badinput.payloads import bad_payloads
from tests.faults.cluster import read_topic
from topics.codec import MalformedMessage, decode
from topics.kafka import make_producer
from topics.messages import DeadLetter


@dataclass(frozen=True, slots=True)
class Sent:
    kind: str
    task_id: str
    partition: int
    offset: int


async def send_all(
    kafka: KafkaSettings,
    topic: str,
    make: Callable[[str], msgspec.Struct],
    big_field: str,
    tag: str,
) -> list[Sent]:
    """The six bad inputs (`bad_payloads`) onto every partition of `topic`, each partition's
    with their own task ids."""
    producer = make_producer(kafka)
    sent = []
    try:
        await producer.start()
        for partition in range(kafka.partitions):
            for kind, task_id, key, value in bad_payloads(make, big_field, f"{tag}{partition}"):
                meta = await producer.send_and_wait(topic, value, key=key, partition=partition)
                sent.append(Sent(kind, task_id, meta.partition, meta.offset))
    finally:
        await producer.stop()
    return sent


async def dead_letters(kafka: KafkaSettings, dlq: str, source: str) -> dict[tuple[int, int], str]:
    """The reasons on `dlq` by (partition, offset) of the record of `source` they stand for."""
    letters: dict[tuple[int, int], str] = {}
    for record in await read_topic(kafka, dlq):
        try:
            letter: DeadLetter = decode(record.value, DeadLetter)
        except MalformedMessage:
            continue
        if letter.topic == source:
            letters[(letter.partition, letter.offset)] = letter.reason
    return letters
