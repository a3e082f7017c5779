"""The spend query behind `GET /v1/spend`: tokens and USD of model calls, grouped, in pages.

Groups come most expensive first (ties by key); a page holds `limit` of them and a cursor to the
next, and the total is always of every group the filters select, not of the page.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import asyncpg

from ledger.queries import BadCursor, decode_cursor, encode_cursor, usd

GroupBy = Literal["system", "agent", "model", "task", "day"]

_SPEND_KEY = {
    "system": "system",
    "agent": "agent",
    "model": "model",
    "day": "to_char(date_trunc('day', hour AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
}


_TASK_SPEND_KEY = {
    "system": "system",
    "agent": "agent",
    "model": "data->>'model'",
    "task": "task_id",
    "day": "to_char(date_trunc('day', at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')",
}
"""Group keys over one task's `model.called` events (the rollups are not per task)."""

_COUNTS = ("calls", "unpriced_calls", "input_tokens", "output_tokens", "cached_tokens")


def _groups_sql(group_by: GroupBy, task: str | None) -> str:
    """The groups, one row each (key, counts, cost_usd); parameters $1 since, $2 until,
    $3 system, $4 task."""
    if task is not None:
        # One task: straight from its events (UNIQUE (task_id, seq) indexes them).
        return f"""
            SELECT {_TASK_SPEND_KEY[group_by]} AS key, count(*)::bigint AS calls,
                   count(*) FILTER (WHERE data->'cost_usd' IS NULL
                                       OR jsonb_typeof(data->'cost_usd') = 'null')::bigint
                       AS unpriced_calls,
                   coalesce(sum((data->>'input_tokens')::bigint), 0)::bigint AS input_tokens,
                   coalesce(sum((data->>'output_tokens')::bigint), 0)::bigint AS output_tokens,
                   coalesce(sum((data->>'cached_tokens')::bigint), 0)::bigint AS cached_tokens,
                   coalesce(sum((data->>'cost_usd')::numeric), 0) AS cost_usd
            FROM events
            WHERE task_id = $4 AND type = 'model.called'
              AND ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
              AND ($3::text IS NULL OR system = $3)
            GROUP BY 1
            """
    if group_by == "task":
        return """
            SELECT task_id AS key, model_calls AS calls, unpriced_calls, input_tokens,
                   output_tokens, cached_tokens, cost_usd
            FROM tasks
            WHERE model_calls > 0 AND ($1::timestamptz IS NULL OR created_at >= $1)
              AND ($2::timestamptz IS NULL OR created_at < $2)
              AND ($3::text IS NULL OR system = $3) AND $4::text IS NULL
            """
    return f"""
        SELECT {_SPEND_KEY[group_by]} AS key, sum(calls)::bigint AS calls,
               sum(unpriced_calls)::bigint AS unpriced_calls,
               sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens,
               sum(cached_tokens)::bigint AS cached_tokens, sum(cost_usd) AS cost_usd
        FROM spend_hourly
        WHERE ($1::timestamptz IS NULL OR hour >= date_trunc('hour', $1::timestamptz))
          AND ($2::timestamptz IS NULL OR hour < $2)
          AND ($3::text IS NULL OR system = $3) AND $4::text IS NULL
        GROUP BY 1
        """


def _after(cursor: str | None) -> tuple[Decimal | None, str | None]:
    if not cursor:
        return None, None
    cost_text, key = decode_cursor(cursor, 2)
    try:
        cost = Decimal(cost_text)
    except InvalidOperation:
        raise BadCursor("cursor is not one this API returned") from None
    if not cost.is_finite():
        raise BadCursor("cursor is not one this API returned")
    return cost, key


async def spend(
    conn: asyncpg.Connection,
    *,
    group_by: GroupBy,
    since: datetime | None,
    until: datetime | None,
    system: str | None,
    task: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    after_cost, after_key = _after(cursor)
    groups_sql = _groups_sql(group_by, task)
    rows = await conn.fetch(
        f"""
        WITH g AS ({groups_sql})
        SELECT * FROM g
        WHERE $5::numeric IS NULL OR cost_usd < $5
           OR (cost_usd = $5 AND coalesce(key, '') > $6::text)
        ORDER BY cost_usd DESC, coalesce(key, '')
        LIMIT $7
        """,
        since,
        until,
        system,
        task,
        after_cost,
        after_key,
        limit + 1,
    )
    sums = ", ".join(f"coalesce(sum({name}), 0)::bigint AS {name}" for name in _COUNTS)
    totals = await conn.fetchrow(
        f"WITH g AS ({groups_sql}) SELECT {sums}, coalesce(sum(cost_usd), 0) AS cost_usd FROM g",
        since,
        until,
        system,
        task,
    )
    groups = [
        {
            "key": r["key"],
            **{name: r[name] for name in _COUNTS},
            "total_tokens": r["input_tokens"] + r["output_tokens"],
            "cost_usd": usd(r["cost_usd"]),
        }
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(str(last["cost_usd"]), last["key"] or "")
    return {
        "group_by": group_by,
        "since": since,
        "until": until,
        "system": system,
        "task": task,
        "groups": groups,
        "next_cursor": next_cursor,
        "total": {
            **{name: totals[name] for name in _COUNTS},
            "total_tokens": totals["input_tokens"] + totals["output_tokens"],
            "cost_usd": float(totals["cost_usd"]),
        },
        "note": "cost_usd sums the calls with a known price; unpriced_calls had none",
    }
