"""Reading the manifests topic record by record (`ManifestLog`) and keeping the valid set
(`screen`): no Kafka, records made here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from manifests._topic import ManifestLog, record_key
from manifests.apply import digest_of
from manifests.screening import screen
from topics.codec import encode
from topics.messages import ManifestRecord
from topics.names import TopicNames

NAMES = TopicNames("p")


@dataclass(frozen=True, slots=True)
class Message:
    offset: int
    key: bytes | None
    value: bytes | None
    topic: str = "p.manifests"
    partition: int = 0
    headers: Sequence[tuple[str, bytes]] | None = field(default=None)


def _resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "orloj.dev/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


ENDPOINT = _resource("ModelEndpoint", "mock", {"provider": "mock", "default_model": "m"})
WRITER = _resource("Agent", "writer", {"model_ref": "mock"})
SYSTEM = _resource("AgentSystem", "s", {"agents": ["writer"], "graph": {"writer": {}}})


class Topic:
    def __init__(self) -> None:
        self.log = ManifestLog()
        self.offset = 0

    def put(self, resource: dict[str, Any] | None, key: str | None = None) -> None:
        """Fold `resource` (None: a tombstone) under `key` (default its own; "" for none)."""
        if resource is not None:
            kind, name = resource["kind"], resource["metadata"]["name"]
            record = ManifestRecord(
                kind=kind, name=name, generation=1, digest=digest_of(resource), resource=resource
            )
            key = record_key(kind, name) if key is None else key
            value: bytes | None = encode(record)
        else:
            value = None
        self.log.fold(Message(self.offset, key.encode() if key else None, value))
        self.offset += 1

    def keys(self) -> set[str]:
        return {r.key for r in screen(self.log.versions, NAMES).catalog.resources()}


def test_a_record_invalid_on_its_own_leaves_the_key_as_it_was() -> None:
    topic = Topic()
    for resource in (ENDPOINT, WRITER, SYSTEM):
        topic.put(resource)
    topic.put(_resource("Agent", "writer", {"model_ref": "mock", "limits": {"max_steps": "x"}}))
    topic.put(_resource("Gadget", "g", {}))
    topic.put(WRITER, key="Agent/someone-else")
    rejected = topic.log.drain()
    assert [(r.message.offset, r.message.key) for r in rejected] == [
        (3, b"Agent/writer"),
        (4, b"Gadget/g"),
        (5, b"Agent/someone-else"),
    ]
    assert "max_steps" in rejected[0].reason and "Gadget" in rejected[1].reason
    assert "not Agent/someone-else" in rejected[2].reason
    assert str(rejected[0]).startswith("p.manifests[0]@3 key Agent/writer: ")
    assert topic.log.rejected_keys == {"Agent/writer", "Gadget/g", "Agent/someone-else"}
    assert topic.keys() == {"ModelEndpoint/mock", "Agent/writer", "AgentSystem/s"}


def test_a_bad_reference_falls_back_to_the_previous_version_or_is_left_out() -> None:
    topic = Topic()
    for resource in (ENDPOINT, WRITER, SYSTEM):
        topic.put(resource)
    topic.put(_resource("Agent", "writer", {"model_ref": "nowhere"}))
    topic.put(_resource("Agent", "rogue", {"model_ref": "nowhere"}))
    screened = screen(topic.log.versions, NAMES)
    assert {r.key for r in screened.catalog.resources()} == {
        "ModelEndpoint/mock",
        "Agent/writer",
        "AgentSystem/s",
    }
    assert screened.catalog.agents["writer"].spec.model_ref == "mock"
    assert {(r.message.offset, "nowhere" in r.reason) for r in screened.rejected} == {
        (3, True),
        (4, True),
    }
    # Once the catalog took the old writer, only it and the newer (rejected) one are kept.
    topic.log.keep_from(screened.chosen)
    assert len(topic.log.versions["Agent/writer"]) == 2


def test_leaving_a_resource_out_leaves_out_what_needs_it() -> None:
    topic = Topic()
    topic.put(ENDPOINT)
    topic.put(_resource("Agent", "writer", {"model_ref": "nowhere"}))
    topic.put(SYSTEM)
    topic.put(_resource("Task", "t", {"system": "s"}))
    screened = screen(topic.log.versions, NAMES)
    assert {r.key for r in screened.catalog.resources()} == {"ModelEndpoint/mock"}
    assert sorted(r.message.offset for r in screened.rejected) == [1, 2, 3]


def test_a_tombstone_deletes_and_a_record_without_key_is_rejected() -> None:
    topic = Topic()
    topic.put(ENDPOINT)
    topic.put(None, key="ModelEndpoint/mock")
    topic.put(ENDPOINT, key="")  # no key: rejected
    assert topic.keys() == set()
    assert [r.reason for r in topic.log.drain()] == ["a manifests record needs a key"]


def test_a_rejected_record_superseded_by_a_newer_one_is_not_reported() -> None:
    topic = Topic()
    topic.put(_resource("Gadget", "g", {}))
    topic.put(None, key="Gadget/g")  # deleted (`podium delete Gadget/g`)
    topic.put(_resource("Agent", "writer", {"limits": {"max_steps": "x"}}))
    topic.put(ENDPOINT)
    topic.put(WRITER)  # a valid writer after the bad one
    assert topic.log.drain() == []
    assert topic.log.rejected_keys == set()
    assert topic.keys() == {"ModelEndpoint/mock", "Agent/writer"}
