"""The hash chain of a task's events: pure functions, no database.

Each stored event has a sequence number per task (1, 2, ...) and
`hash = sha256(prev_hash + "\n" + body)`, where `body` is the canonical JSON of the event
(msgspec, keys sorted, no whitespace) and the first link's `prev_hash` is `GENESIS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from topics.messages import Event

GENESIS = "0" * 64

_encoder = msgspec.json.Encoder(order="sorted")


def canonical(event: Event) -> bytes:
    """The canonical JSON of an event: what the chain hashes and what the ledger serves."""
    return _encoder.encode(event)


def link_hash(prev_hash: str, body: bytes) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class StoredLink:
    """One row of the events table, as `audit verify` reads it."""

    event_id: str
    task_id: str
    seq: int
    type: str
    at: datetime
    data: Any
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link of a chain, for a person."""

    task_id: str
    seq: int
    event_id: str
    problem: str

    def __str__(self) -> str:
        return f"task {self.task_id}: link {self.seq} (event {self.event_id}): {self.problem}"


def verify_chain(
    task_id: str, links: Iterable[StoredLink], head: tuple[int, str] | None
) -> Break | None:
    """Recompute one task's chain (links in `seq` order); return its first broken link."""
    expected_prev = GENESIS
    expected_seq = 1
    last: StoredLink | None = None
    for link in links:
        if link.seq != expected_seq:
            return Break(task_id, expected_seq, link.event_id, f"link {expected_seq} is missing")
        if link.prev_hash != expected_prev:
            return Break(task_id, link.seq, link.event_id, "prev_hash does not match link before")
        body = link.body.encode("utf-8")
        if link_hash(link.prev_hash, body) != link.hash:
            return Break(task_id, link.seq, link.event_id, "hash does not match the stored event")
        problem = _columns_disagree(link)
        if problem:
            return Break(task_id, link.seq, link.event_id, problem)
        expected_prev = link.hash
        expected_seq += 1
        last = link
    if head is not None:
        head_seq, head_hash = head
        if last is None or head_seq != last.seq or head_hash != last.hash:
            seq = last.seq if last else 0
            return Break(
                task_id,
                seq + 1,
                "",
                f"the chain ends at link {seq} but its recorded head is link {head_seq}: "
                "links were removed",
            )
    return None


def _columns_disagree(link: StoredLink) -> str | None:
    """The indexed columns must say what the hashed body says."""
    try:
        event = msgspec.json.decode(link.body, type=Event)
    except msgspec.MsgspecError as exc:
        return f"stored body is not an event: {exc}"
    if event.event_id != link.event_id:
        return "event_id column differs from the hashed event"
    if event.task_id != link.task_id:
        return "task_id column differs from the hashed event"
    if event.type != link.type:
        return "type column differs from the hashed event"
    if event.at != link.at:
        return "time column differs from the hashed event"
    if msgspec.to_builtins(event.data) != link.data:
        return "data column differs from the hashed event"
    return None
