"""`podium.manifests` (compacted): the applied resources and compiled routing tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta

from topics.messages._base import JSONValue, Message, utcnow


class ManifestRecord(Message, frozen=True, kw_only=True):
    """One applied resource or compiled routing table, keyed `Kind/name`; a tombstone deletes."""

    topic_doc: ClassVar[str] = "podium.manifests (compacted)"

    kind: str
    name: str
    generation: Annotated[int, Meta(ge=1, description="Bumped on every change of the spec.")]
    digest: Annotated[str, Meta(description="SHA-256 of the canonical resource.")]
    resource: Annotated[dict[str, JSONValue], Meta(description="The resource as applied.")]
    source: Annotated[str, Meta(description="file:line it was applied from.")] = ""
    applied_at: datetime = msgspec.field(default_factory=utcnow)
