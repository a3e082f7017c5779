"""Reading the compacted manifests topic: every key's records, validated as they are read.

Anyone with WRITE on the topic can put any bytes there, so a reader checks each record on its
own as it folds it (it decodes, its key is its `Kind/name`, its resource passes its kind's
validation). A record that does not is rejected: the key keeps what it had, and the rejection is
kept for the caller to report. References across resources are checked later, on the whole set
(`manifests.screening`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from manifests.loader import Located, parse_document
from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode
from topics.dlq import Record
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


@dataclass(frozen=True, slots=True)
class Version:
    """One well-formed record of a key, where it was read, and its resource (None for a
    routing table, which the readers compile themselves)."""

    record: ManifestRecord
    message: Record
    located: Located | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that is not applied, and why."""

    message: Record
    reason: str

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.message.topic, self.message.partition, self.message.offset)

    def __str__(self) -> str:
        m = self.message
        key = (m.key or b"").decode(errors="replace") or "(no key)"
        return f"{m.topic}[{m.partition}]@{m.offset} key {key}: {self.reason}"


def log_rejection(rejection: Rejection) -> None:
    log.error("skipping the manifests record %s", rejection)


@dataclass(slots=True)
class ManifestLog:
    """Every key's well-formed versions, oldest first (`fold`), and the records rejected on
    their own since the last `drain` (less those a newer record of their key superseded).
    `rejected_keys` are the keys whose newest record on the topic is not their newest version
    here (it was rejected)."""

    versions: dict[str, list[Version]] = field(default_factory=dict)
    rejected_keys: set[str] = field(default_factory=set)
    _rejected: list[Rejection] = field(default_factory=list)

    @property
    def records(self) -> Records:
        """The newest well-formed record of every key."""
        return {key: versions[-1].record for key, versions in self.versions.items()}

    def fold(self, message: Record) -> bool:
        """Fold one message in; True when it changed the versions."""
        if message.key is None:
            self._rejected.append(Rejection(message, "a manifests record needs a key"))
            return False
        key = message.key.decode(errors="replace")
        if message.value is None:  # a tombstone deletes the key
            self._superseded(key)
            return self.versions.pop(key, None) is not None
        version = _version(message, key)
        if isinstance(version, Rejection):
            self._rejected.append(version)
            self.rejected_keys.add(key)
            return False
        self._superseded(key)
        self.versions.setdefault(key, []).append(version)
        return True

    def _superseded(self, key: str) -> None:
        """A newer record of `key` makes its rejected ones moot (not reported, not stale)."""
        self.rejected_keys.discard(key)
        self._rejected = [r for r in self._rejected if r.message.key != key.encode()]

    def keep_from(self, chosen: Mapping[str, Version]) -> None:
        """Forget the versions older than the one each key has in a catalog now (`chosen`);
        newer ones, rejected so far, stay to be tried again when the set changes."""
        for key, versions in self.versions.items():
            keep = chosen.get(key)
            at = next((i for i, v in enumerate(versions) if v is keep), 0)
            del versions[:at]

    @property
    def has_rejections(self) -> bool:
        return bool(self._rejected)

    def drain(self) -> list[Rejection]:
        """The records rejected on their own since the last call."""
        out, self._rejected = self._rejected, []
        return out


def _version(message: Record, key: str) -> Version | Rejection:
    assert message.value is not None
    try:
        record: ManifestRecord = decode(message.value, ManifestRecord)
    except MalformedMessage as exc:
        return Rejection(message, exc.reason)
    if record_key(record.kind, record.name) != key:
        return Rejection(message, f"the record is {record.kind}/{record.name}, not {key}")
    if record.kind == ROUTING_KIND:
        return Version(record, message, None)
    file, _, line = record.source.rpartition(":")
    parsed = parse_document(
        dict(record.resource),
        file=f"(applied) {file}" if file else "(applied)",
        line=int(line) if line.isdigit() else 0,
    )
    if isinstance(parsed, list):
        return Rejection(message, "; ".join(str(e) for e in parsed))
    if parsed.resource.key != key:
        return Rejection(message, f"the resource is {parsed.resource.key}, not {key}")
    return Version(record, message, parsed)


async def read_until_end(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    manifests: ManifestLog,
    *,
    timeout_s: float = 30.0,
) -> bool:
    """Consume until every partition reaches its end offset (the last stable offset)."""
    return await read_to_end(consumer, tps, manifests.fold, timeout_s=timeout_s)


async def read_log(kafka: KafkaSettings, topic: str) -> ManifestLog:
    """Every key's versions on the manifests topic (empty when it does not exist)."""
    manifests = ManifestLog()
    partitions = await partitions_of(kafka, topic)
    if not partitions:
        return manifests
    consumer = manifest_consumer(kafka)
    try:
        await consumer.start()
        tps = await assign_from_beginning(consumer, topic, partitions)
        await read_until_end(consumer, tps, manifests)
        return manifests
    finally:
        await consumer.stop()


async def read_records(kafka: KafkaSettings, topic: str) -> Records:
    """The newest well-formed record of every key on the manifests topic ({} when it does not
    exist); the records rejected are logged."""
    manifests = await read_log(kafka, topic)
    for rejection in manifests.drain():
        log_rejection(rejection)
    return manifests.records
