"""`podium audit verify`: recompute the hash chains from the stored rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import asyncpg

from ledger.chain import Break, StoredLink, verify_chain


@dataclass(slots=True)
class VerifyReport:
    tasks: int = 0
    events: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


async def verify(conn: asyncpg.Connection, task_id: str | None = None) -> VerifyReport:
    """Check every chain (or one task's); report the first broken link of each broken chain."""
    report = VerifyReport()
    heads: dict[str, tuple[int, str]] = {}
    current: str | None = None
    links: list[StoredLink] = []

    def finish() -> None:
        if current is None:
            return
        report.tasks += 1
        broken = verify_chain(current, links, heads.pop(current, None))
        if broken:
            report.breaks.append(broken)

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot for heads and links, so a concurrent ingest cannot look like a break.
        for r in await conn.fetch(
            "SELECT task_id, seq, hash FROM chain_heads WHERE $1::text IS NULL OR task_id = $1",
            task_id,
        ):
            heads[r["task_id"]] = (r["seq"], r["hash"])
        cursor = conn.cursor(
            "SELECT event_id, task_id, seq, type, at, data::text AS data, body, prev_hash, hash"
            " FROM events WHERE $1::text IS NULL OR task_id = $1 ORDER BY task_id, seq",
            task_id,
            prefetch=2000,
        )
        async for row in cursor:
            if row["task_id"] != current:
                finish()
                current = row["task_id"]
                links = []
            report.events += 1
            links.append(
                StoredLink(
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
            )
        finish()
    for orphan, head in sorted(heads.items()):
        report.tasks += 1
        report.breaks.append(
            Break(orphan, 1, "", f"every link is gone but the chain's head is link {head[0]}")
        )
    return report
