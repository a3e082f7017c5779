"""Read queries behind the API: tasks, audit trail, denials, approvals (spend: `ledger.spend`).

Every list comes in pages: `limit` items and an opaque `next_cursor` (None on the last page),
keyed on the columns the list is ordered by.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg


class BadCursor(ValueError):
    pass


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not one this API returned") from exc
    if (
        not isinstance(parts, list)
        or len(parts) != size
        or not all(isinstance(p, str) for p in parts)
    ):
        raise BadCursor("cursor is not one this API returned")
    return parts


def cursor_time(text: str) -> datetime:
    """A time a cursor holds (in UTC; a forged one out of range is a bad cursor, not a 500)."""
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise BadCursor("cursor is not one this API returned") from exc


def time_cursor(
    cursor: str | None, *, time_may_be_empty: bool = False
) -> tuple[datetime | None, str | None]:
    """The (time, id) a page's cursor points after; (None, None) for the first page. An empty
    time is allowed only where rows may have none (it sorts them last)."""
    if not cursor:
        return None, None
    at_text, after_id = decode_cursor(cursor, 2)
    if not at_text and time_may_be_empty:
        return None, after_id
    return cursor_time(at_text), after_id


def usd(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def task_summary(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "task_id": row["task_id"],
        "system": row["system"],
        "status": row["status"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "model_calls": row["model_calls"],
        "unpriced_calls": row["unpriced_calls"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cached_tokens": row["cached_tokens"],
        "total_tokens": row["input_tokens"] + row["output_tokens"],
        "cost_usd": usd(row["cost_usd"]),
        "events": row["events"],
        "error": row["error"],
    }


async def list_tasks(
    conn: asyncpg.Connection,
    *,
    system: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    after_at, after_id = time_cursor(cursor)
    rows = await conn.fetch(
        """
        SELECT * FROM tasks
        WHERE ($1::text IS NULL OR system = $1) AND ($2::text IS NULL OR status = $2)
          AND ($3::timestamptz IS NULL OR created_at >= $3)
          AND ($4::timestamptz IS NULL OR created_at < $4)
          AND ($5::timestamptz IS NULL OR (created_at, task_id) < ($5, $6::text))
        ORDER BY created_at DESC, task_id DESC
        LIMIT $7
        """,
        system,
        status,
        since,
        until,
        after_at,
        after_id,
        limit + 1,
    )
    items = [task_summary(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), last["task_id"])
    return items, next_cursor


async def get_task(conn: asyncpg.Connection, task_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)
    if row is None:
        return None
    task = task_summary(row)
    task["input"] = json.loads(row["input"]) if row["input"] is not None else None
    task["output"] = row["output"]
    task["submitted_by"] = row["submitted_by"]
    return task


async def task_events(
    conn: asyncpg.Connection, task_id: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    after = 0
    if cursor:
        (seq_text,) = decode_cursor(cursor, 1)
        if not seq_text.isdigit():
            raise BadCursor("cursor is not one this API returned")
        after = int(seq_text)
    rows = await conn.fetch(
        "SELECT seq, event_id, type, system, agent, step_id, attempt, at, trace_id, source,"
        " data::text AS data, prev_hash, hash FROM events"
        " WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        task_id,
        after,
        limit + 1,
    )
    items = []
    for r in rows[:limit]:
        item = dict(r)
        item["data"] = json.loads(r["data"])
        items.append(item)
    next_cursor = encode_cursor(str(rows[limit - 1]["seq"])) if len(rows) > limit else None
    return items, next_cursor


async def denials(
    conn: asyncpg.Connection,
    *,
    since: datetime | None,
    until: datetime | None,
    system: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    after_at, after_id = time_cursor(cursor)
    rows = await conn.fetch(
        """
        SELECT event_id, task_id, system, agent, step_id, at, data::text AS data FROM events
        WHERE type = 'policy.decided' AND data->>'decision' = 'deny'
          AND ($1::timestamptz IS NULL OR at >= $1) AND ($2::text IS NULL OR system = $2)
          AND ($3::timestamptz IS NULL OR (at, event_id) < ($3, $4::text))
          AND ($6::timestamptz IS NULL OR at < $6)
        ORDER BY at DESC, event_id DESC LIMIT $5
        """,
        since,
        system,
        after_at,
        after_id,
        limit + 1,
        until,
    )
    items = []
    for r in rows[:limit]:
        data = json.loads(r["data"])
        items.append(
            {
                "event_id": r["event_id"],
                "task_id": r["task_id"],
                "system": r["system"],
                "agent": r["agent"],
                "step_id": r["step_id"],
                "at": r["at"],
                "action": data.get("action"),
                "model": data.get("model"),
                "tool": data.get("tool"),
                "rule": data.get("rule", ""),
                "policy": data.get("policy", ""),
                "reason": data.get("reason", ""),
            }
        )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["at"].isoformat(), last["event_id"])
    return items, next_cursor


async def approvals(
    conn: asyncpg.Connection, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Oldest request first; approvals with no request time (a decision seen first) last."""
    after_at, after_id = time_cursor(cursor, time_may_be_empty=True)
    rows = await conn.fetch(
        "SELECT approval_id, task_id, system, agent, step_id, action, tool, model,"
        " arguments::text AS arguments, reason, status, requested_at, expires_at, decided_by,"
        " decided_at, decision_reason FROM approvals"
        " WHERE ($1::text IS NULL OR status = $1)"
        "   AND ($3::text IS NULL"
        "        OR ($2::timestamptz IS NULL AND requested_at IS NULL AND approval_id > $3)"
        "        OR ($2::timestamptz IS NOT NULL"
        "            AND (requested_at IS NULL OR (requested_at, approval_id) > ($2, $3))))"
        " ORDER BY requested_at NULLS LAST, approval_id LIMIT $4",
        status,
        after_at,
        after_id,
        limit + 1,
    )
    items = []
    for r in rows[:limit]:
        item = dict(r)
        item["arguments"] = json.loads(r["arguments"])
        items.append(item)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        at = last["requested_at"]
        next_cursor = encode_cursor(at.isoformat() if at else "", last["approval_id"])
    return items, next_cursor


async def approval_status(conn: asyncpg.Connection, approval_id: str) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status FROM approvals WHERE approval_id = $1", approval_id
    )
    return status


async def task_exists(conn: asyncpg.Connection, task_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM tasks WHERE task_id = $1", task_id))
