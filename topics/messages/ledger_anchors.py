"""`podium.ledger.anchors` (compacted): the ledger's signed chain heads, outside the database."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta

from topics.messages._base import Message, utcnow


class LedgerAnchor(Message, frozen=True, kw_only=True):
    """A chain head signed by the ledger: a task's (key `task:<task_id>`) or the whole ledger's
    high-water mark (key `ledger`)."""

    topic_doc: ClassVar[str] = "podium.ledger.anchors (compacted)"

    scope: Annotated[
        Literal["task", "ledger"],
        Meta(description="`task`: one task's chain head; `ledger`: the global high-water mark."),
    ]
    task_id: Annotated[str, Meta(description="The task whose head this is (scope task).")] = ""
    links: Annotated[
        int, Meta(ge=0, description="Links of the task's chain up to its head (scope task).")
    ] = 0
    hash: Annotated[str, Meta(description="Hash of the head link (scope task).")] = ""
    gseq: Annotated[
        int,
        Meta(
            ge=0,
            description="Global sequence number of the head link (scope task), or the highest "
            "number stored when the anchor was made (scope ledger).",
        ),
    ]
    tasks: Annotated[
        int, Meta(ge=0, description="Tasks with events up to `gseq` (scope ledger).")
    ] = 0
    anchored_at: datetime = msgspec.field(default_factory=utcnow)
    key_id: Annotated[str, Meta(description="Id of the ledger's signing key.")]
    signature: Annotated[
        str,
        Meta(
            description="Ed25519 signature (hex) over the anchor's canonical JSON with an "
            "empty signature."
        ),
    ] = ""
