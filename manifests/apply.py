"""`apply_paths`: validate, compile, create the topics, and publish every resource and routing
table to the compacted manifests topic in ONE Kafka transaction (all or nothing).

What is applied is checked together with what is already on the topic (so `apply -f agents.yaml`
may refer to an endpoint applied earlier): the valid set the watchers read (`screen`), so a record
on the topic that they skip is skipped here too (and logged), never a reason to refuse. A resource
whose canonical form did not change is not published again; applying the same files twice
publishes nothing, except Secrets: their values are sealed (`manifests.sealing`) anew on every
apply, with a new ephemeral key, so a Secret is published again each time (which is also how a
value is rotated). A key whose newest record on the topic was skipped is published anew.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from manifests._topic import ROUTING_KIND, ManifestLog, Records, log_rejection, read_log, record_key
from manifests.catalog import Catalog
from manifests.errors import ManifestError
from manifests.loader import Located, build, parse_files
from manifests.models import Secret, Task
from manifests.screening import Screened, screen
from manifests.sealing import sealed_document
from manifests.task_checks import task_notes
from podium.core.settings import KafkaSettings
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_producer
from topics.messages import ManifestRecord
from topics.names import TopicNames

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

log = logging.getLogger(__name__)

NO_SEALING_KEY = (
    "there is no sealing key to seal this Secret with, and its values are never published in "
    "plain text: set PODIUM_SEALING_PUBLIC_KEY (or PODIUM_SEALING_PUBLIC_KEY_FILE) to the "
    "services' public key, or start the dev stack (`podium stack up` makes a key pair)"
)


@dataclass(slots=True)
class ApplyReport:
    """What `apply` did: the keys published (with generations), unchanged keys, new topics."""

    changed: dict[str, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    created_topics: list[str] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the applied Tasks ask that Podium does not do (`manifests.task_checks`)."""

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def no_change(self) -> bool:
        return self.ok and not self.changed


def digest_of(value: Any) -> str:
    """SHA-256 of the canonical JSON of a resource (sorted keys)."""
    return hashlib.sha256(msgspec.json.encode(value, order="sorted")).hexdigest()


def plan(
    applied: Sequence[Located],
    catalog: Catalog,
    existing: Records,
    stale: Collection[str] = (),
) -> tuple[list[ManifestRecord], list[str]]:
    """The records to publish (changed resources and routing tables) and the unchanged keys.
    A key in `stale` is published even when its record in `existing` has the same digest."""
    records: list[ManifestRecord] = []
    unchanged: list[str] = []
    candidates: list[tuple[str, str, dict[str, Any], str]] = []
    for item in applied:
        candidates.append((item.resource.kind_name, item.resource.name, item.raw, item.source))
    sources = {
        item.resource.name: item.source
        for item in applied
        if item.resource.kind_name == "AgentSystem"
    }
    for name, table in catalog.routing.items():
        candidates.append(
            (
                ROUTING_KIND,
                name,
                msgspec.to_builtins(table, order="deterministic"),
                sources.get(name, ""),
            )
        )
    for kind, name, resource, source in candidates:
        key = record_key(kind, name)
        digest = digest_of(resource)
        previous = existing.get(key)
        if previous is not None and previous.digest == digest and key not in stale:
            unchanged.append(key)
            continue
        generation = previous.generation + 1 if previous is not None else 1
        records.append(
            ManifestRecord(
                kind=kind,
                name=name,
                generation=generation,
                digest=digest,
                resource=resource,
                source=source,
            )
        )
    return records, unchanged


def seal_secrets(
    applied: Sequence[Located], public: X25519PublicKey | None
) -> tuple[list[Located], list[ManifestError]]:
    """`applied` with every Secret's values sealed to `public` (the document published and the
    resource both); an error per Secret with plain values when there is no key."""
    out: list[Located] = []
    errors: list[ManifestError] = []
    for item in applied:
        resource = item.resource
        if isinstance(resource, Secret) and not resource.spec.sealed:
            if public is None:
                errors.append(item.error(("spec",), NO_SEALING_KEY))
                continue
            raw = sealed_document(item.raw, resource, public)
            item = dataclasses.replace(item, raw=raw, resource=Secret.model_validate(raw))
        out.append(item)
    return out, errors


async def apply_paths(
    kafka: KafkaSettings,
    names: TopicNames,
    paths: Sequence[Path],
    *,
    sealing_key: X25519PublicKey | None = None,
) -> ApplyReport:
    """Apply the files; Secret values are sealed to `sealing_key` (the services' public key)
    before anything leaves the process, and a Secret is refused when there is none."""
    report = ApplyReport()
    parsed, errors = parse_files([Path(p) for p in paths])
    applied, unsealed = seal_secrets(parsed, sealing_key)
    errors += unsealed
    if errors:
        report.errors = sorted(errors, key=ManifestError.sort_key)
        return report
    manifests, screened = await read_screened(kafka, names)
    keys = {item.resource.key for item in applied}
    result = build([*screened.located(without=keys), *applied], names=names)
    if result.catalog is None:
        report.errors = result.errors
        return report
    catalog = result.catalog
    # Only routing tables of applied systems, or of systems whose table is missing or stale.
    records, unchanged = plan(applied, catalog, manifests.records, stale_keys(manifests, screened))
    report.unchanged = unchanged
    report.created_topics = await _ensure_topics(kafka, names, catalog)
    if records:
        await publish(kafka, names, records)
    report.changed = {record_key(r.kind, r.name): r.generation for r in records}
    tasks = {i.resource.name for i in applied if isinstance(i.resource, Task)}
    report.notes = task_notes(catalog, only=tasks)
    return report


async def read_screened(kafka: KafkaSettings, names: TopicNames) -> tuple[ManifestLog, Screened]:
    """What is on the manifests topic, and the valid set of it; the records skipped are logged."""
    manifests = await read_log(kafka, names.manifests)
    screened = screen(manifests.versions, names)
    for rejection in [*manifests.drain(), *screened.rejected]:
        log_rejection(rejection)
    return manifests, screened


def stale_keys(manifests: ManifestLog, screened: Screened) -> set[str]:
    """The keys whose newest record on the topic is not the one the readers use."""
    stale = set(manifests.rejected_keys)
    for key, versions in manifests.versions.items():
        if screened.chosen.get(key) is not versions[-1]:
            stale.add(key)
    return stale


async def _ensure_topics(kafka: KafkaSettings, names: TopicNames, catalog: Catalog) -> list[str]:
    created = await ensure_topics(
        kafka, [names.manifests], compacted=[names.manifests], partitions=1
    )
    agents = catalog.agents_in_systems()
    joins = [names.agent_joins(a) for a in agents]
    topics = [*names.core_topics(), *joins]
    for agent in agents:
        topics += [names.agent(agent), names.agent_dlq(agent)]
    created += await ensure_topics(kafka, topics, compacted=joins)
    return sorted(created)


async def publish(
    kafka: KafkaSettings,
    names: TopicNames,
    records: Sequence[ManifestRecord],
    tombstones: Sequence[str] = (),
) -> None:
    """Write `records` and a tombstone for each key of `tombstones`, in one transaction."""
    producer = make_producer(kafka, transactional_id=f"{names.manifests}.apply")
    try:
        await producer.start()
        async with producer.transaction():
            futures = [
                await producer.send(
                    names.manifests,
                    key=record_key(r.kind, r.name).encode(),
                    value=encode(r),
                    headers=headers_for(r),
                )
                for r in records
            ]
            for key in tombstones:
                futures.append(await producer.send(names.manifests, key=key.encode(), value=None))
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    log.info("published %d manifest records, %d deletions", len(records), len(tombstones))
