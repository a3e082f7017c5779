"""`podium audit verify`: the stored rows checked against themselves and against the anchors.

- Every task's hash chain is recomputed (`chain.verify_chain`), and its links must have been
  stored in chain order (global sequence numbers rising with the link number).
- With anchors (`anchors.Anchors`, read from Kafka): every anchored task must be in the database
  and its link at the anchored position must have the anchored hash (a rewritten, reordered or
  removed row changes every later hash, so rehashing the chain does not hide it); the global
  sequence must have no gap up to the anchored high-water mark (a deleted row or task).
- The rollups (`tasks`, `spend_hourly`) must agree with the events (`_rollups`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from ledger import _rollups
from ledger.anchors import Anchors
from ledger.chain import Break, StoredLink, verify_chain
from ledger.plan import Incoming, SpendDelta, SpendKey
from topics.messages import Event

MAX_GAPS = 20
"""Gaps of the global sequence named one by one; more are counted."""


@dataclass(slots=True)
class VerifyReport:
    tasks: int = 0
    events: int = 0
    anchored_tasks: int = 0
    """Tasks whose chain was checked against a signed anchor."""
    high_water: int | None = None
    """The global sequence number the latest ledger anchor signed, if any."""
    breaks: list[Break] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Findings that are not one link of one chain: sequence gaps, deleted tasks, anchors,
    rollups."""

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.problems


@dataclass(slots=True)
class _Task:
    task_id: str
    links: list[StoredLink] = field(default_factory=list)
    gseqs: list[int] = field(default_factory=list)


class _Verifier:
    def __init__(self, anchors: Anchors | None, rollups: dict[str, Any]) -> None:
        self.report = VerifyReport()
        self.anchors = anchors
        self.rollups = rollups
        self.heads: dict[str, tuple[int, str]] = {}
        self.seen: set[str] = set()
        self.spend: dict[SpendKey, SpendDelta] = {}

    def finish(self, task: _Task) -> None:
        report = self.report
        report.tasks += 1
        self.seen.add(task.task_id)
        broken = verify_chain(task.task_id, task.links, self.heads.pop(task.task_id, None))
        if broken:
            report.breaks.append(broken)
        gseqs = task.gseqs
        for n in range(1, len(gseqs)):
            if gseqs[n] <= gseqs[n - 1]:
                link = task.links[n]
                report.breaks.append(
                    Break(
                        task.task_id,
                        link.seq,
                        link.event_id,
                        f"stored before the link ahead of it (global sequence {gseqs[n]} after "
                        f"{gseqs[n - 1]}): links were reordered",
                    )
                )
                break
        self._check_anchor(task)
        items = []
        for link in task.links:
            try:
                ev = msgspec.json.decode(link.body, type=Event)
            except msgspec.MsgspecError:
                continue
            items.append(Incoming(ev, link.body.encode("utf-8"), "", -1, -1))
        expected = _rollups.recompute(task.task_id, items, self.spend)
        row = self.rollups.pop(task.task_id, None)
        report.problems += _rollups.task_disagreements(task.task_id, row, expected)

    def _check_anchor(self, task: _Task) -> None:
        anchor = self.anchors.tasks.get(task.task_id) if self.anchors else None
        if anchor is None:
            return
        self.report.anchored_tasks += 1
        at = next((link for link in task.links if link.seq == anchor.links), None)
        if at is None:
            self.report.problems.append(
                f"task {task.task_id}: {anchor.links} links were anchored but the chain ends at "
                f"link {task.links[-1].seq if task.links else 0}: links were removed"
            )
        elif at.hash != anchor.hash:
            self.report.breaks.append(
                Break(
                    task.task_id,
                    anchor.links,
                    at.event_id,
                    "differs from its signed anchor: a row up to this link was rewritten, "
                    "reordered or removed (and the chain rehashed)",
                )
            )


def _link(row: asyncpg.Record) -> StoredLink:
    return StoredLink(
        event_id=row["event_id"],
        task_id=row["task_id"],
        seq=row["seq"],
        type=row["type"],
        at=row["at"],
        data=json.loads(row["data"]),
        body=row["body"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


async def verify(
    conn: asyncpg.Connection, task_id: str | None = None, anchors: Anchors | None = None
) -> VerifyReport:
    """Check every chain (or one task's), against `anchors` when given; see the module
    docstring. A chain's first broken link is reported, and every other finding."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot for everything, so a concurrent ingest cannot look like a break.
        rollups = {
            r["task_id"]: r
            for r in await conn.fetch(
                "SELECT * FROM tasks WHERE $1::text IS NULL OR task_id = $1", task_id
            )
        }
        check = _Verifier(anchors, rollups)
        report = check.report
        for r in await conn.fetch(
            "SELECT task_id, seq, hash FROM chain_heads WHERE $1::text IS NULL OR task_id = $1",
            task_id,
        ):
            check.heads[r["task_id"]] = (r["seq"], r["hash"])
        cursor = conn.cursor(
            "SELECT event_id, task_id, seq, type, at, data::text AS data, body, prev_hash, hash,"
            " gseq FROM events WHERE $1::text IS NULL OR task_id = $1 ORDER BY task_id, seq",
            task_id,
            prefetch=2000,
        )
        current: _Task | None = None
        async for row in cursor:
            if current is None or row["task_id"] != current.task_id:
                if current is not None:
                    check.finish(current)
                current = _Task(row["task_id"])
            report.events += 1
            current.links.append(_link(row))
            current.gseqs.append(row["gseq"])
        if current is not None:
            check.finish(current)
        for orphan, head in sorted(check.heads.items()):
            report.tasks += 1
            report.breaks.append(
                Break(orphan, 1, "", f"every link is gone but the chain's head is link {head[0]}")
            )
        for orphan in sorted(check.rollups):
            report.problems += _rollups.task_disagreements(orphan, check.rollups[orphan], None)
        if task_id is None:
            spend = await conn.fetch("SELECT * FROM spend_hourly ORDER BY hour, system, agent")
            report.problems += _rollups.spend_disagreements(spend, check.spend)
            report.problems += await _sequence_gaps(conn, anchors)
        if anchors is not None:
            _check_anchors(report, anchors, check.seen, task_id)
    return report


async def _sequence_gaps(conn: asyncpg.Connection, anchors: Anchors | None) -> list[str]:
    """Gaps in the global sequence up to the highest number known: the rows', the counter's and
    the signed high-water mark's."""
    stored: int = await conn.fetchval("SELECT coalesce(max(gseq), 0) FROM events")
    counter: int = await conn.fetchval("SELECT last FROM ledger_sequence")
    signed = anchors.ledger.gseq if anchors and anchors.ledger else 0
    top = max(stored, counter, signed)
    gaps = [
        (r["first"], r["last"])
        for r in await conn.fetch(
            "SELECT gseq + 1 AS first, next - 1 AS last FROM"
            " (SELECT gseq, lead(gseq, 1, $1::bigint + 1) OVER (ORDER BY gseq) AS next"
            "  FROM (SELECT 0::bigint AS gseq UNION ALL SELECT gseq FROM events) AS g) AS s"
            " WHERE next > gseq + 1 ORDER BY gseq LIMIT $2",
            top,
            MAX_GAPS + 1,
        )
    ]
    problems = [
        f"events {first}..{last} of the global sequence are missing: rows or tasks were deleted"
        if first != last
        else f"event {first} of the global sequence is missing: a row was deleted"
        for first, last in gaps[:MAX_GAPS]
    ]
    if len(gaps) > MAX_GAPS:
        problems.append(f"more than {MAX_GAPS} gaps in the global sequence")
    if signed > counter:
        problems.append(
            f"the sequence counter is at {counter} but {signed} were signed: it was rewound"
        )
    return problems


def _check_anchors(
    report: VerifyReport, anchors: Anchors, seen: set[str], task_id: str | None
) -> None:
    report.high_water = anchors.ledger.gseq if anchors.ledger else None
    report.problems += [f"anchor rejected: {why}" for why in anchors.rejected]
    for missing in sorted(anchors.tasks.keys() - seen):
        if task_id is not None and missing != task_id:
            continue
        anchor = anchors.tasks[missing]
        report.problems.append(
            f"task {missing}: anchored with {anchor.links} links (up to global sequence "
            f"{anchor.gseq}) but it has no events in the database: the task was deleted"
        )
    if task_id is not None:
        return
    if anchors.ledger is None:
        if report.events:
            report.problems.append(
                "no ledger anchor on the anchors topic: nothing signed to check the rows against"
            )
        return
    if len(anchors.tasks) < anchors.ledger.tasks:
        report.problems.append(
            f"the anchors topic holds {len(anchors.tasks)} task anchors but the ledger anchor "
            f"counts {anchors.ledger.tasks} tasks: task anchors were removed"
        )
