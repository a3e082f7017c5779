"""Writing batches into PostgreSQL: one transaction per batch, COPY for the events.

Under per-task advisory locks (taken in a fixed order, so writers never deadlock) the batch's
event ids are checked against the table, the chains' heads are read, the new links are computed
in arrival order (`plan.plan_batch`), and then the events are COPYed and the heads, tasks, spend
rollups and approvals upserted, all in the same transaction. A redelivered event is skipped; a
batch that fails is rolled back whole and retried by the caller.

A caller may `prepare` a batch ahead of time, outside the transaction, against the heads it
expects (the ingest loop does, while the previous batch is being written). `write_batch` uses a
prepared plan only when the database agrees with it under the locks: none of its events is
stored yet and every chain's head is the one it was prepared on; otherwise it plans again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from ledger.chain import GENESIS
from ledger.plan import BatchPlan, Incoming, plan_batch

EVENT_COLUMNS = (
    "event_id",
    "task_id",
    "seq",
    "type",
    "system",
    "agent",
    "step_id",
    "attempt",
    "at",
    "trace_id",
    "source",
    "data",
    "body",
    "prev_hash",
    "hash",
    "topic",
    "kafka_partition",
    "kafka_offset",
)
"""The columns of the rows `event_rows` makes; the writer adds `gseq` when it stores them."""

STORED_COLUMNS = (*EVENT_COLUMNS, "gseq")

WRITER_ROLE = "podium_ledger_writer"
"""The role the ledger's connections write as (`SET ROLE` at connection start): it may insert
and read events, never update or delete them (migration 0004)."""


def task_lock_key(schema: str, task_id: str) -> int:
    digest = hashlib.sha256(f"{schema}\x00{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def create_pool(dsn: str, schema: str, *, size: int) -> asyncpg.Pool:
    """A pool whose connections resolve unqualified names in the ledger's schema and act as
    `WRITER_ROLE` (a startup parameter, so the pool's `RESET ALL` between uses keeps it)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings={
            "search_path": f'"{schema}", public',
            "application_name": "podium",
            "role": WRITER_ROLE,
        },
    )
    return pool


Row = tuple[Any, ...]
Heads = dict[str, tuple[int, str]]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch planned outside the transaction, with its COPY rows, on assumed chain heads."""

    batch: Sequence[Incoming]
    plan: BatchPlan
    rows: list[Row]


def prepare(batch: Sequence[Incoming], heads: Mapping[str, tuple[int, str]]) -> PreparedBatch:
    """Plan a batch as if none of its events were stored and the chains ended at `heads`
    (a task missing from `heads` is taken as new)."""
    plan = plan_batch(batch, set(), heads)
    return PreparedBatch(batch, plan, event_rows(plan))


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int
    duplicates: int
    heads: Heads = field(default_factory=dict)
    """The chains' heads after the write, for the tasks of the batch."""
    replanned: bool = False
    """A prepared plan was given but the database disagreed with it."""


async def write_batch(
    conn: asyncpg.Connection,
    schema: str,
    batch: Sequence[Incoming],
    prepared: PreparedBatch | None = None,
) -> WriteResult:
    """Store a batch in one transaction; idempotent on event_id."""
    if prepared is not None:
        batch = prepared.batch
    if not batch:
        return WriteResult(0, 0)
    task_ids = sorted({item.event.task_id for item in batch})
    event_ids = list({item.event.event_id for item in batch})
    async with conn.transaction():
        keys = sorted({task_lock_key(schema, t) for t in task_ids})
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k", keys
        )
        stored = {
            r[0]
            for r in await conn.fetch(
                "SELECT event_id FROM events WHERE event_id = ANY($1::text[])", event_ids
            )
        }
        heads = {
            r[0]: (r[1], r[2])
            for r in await conn.fetch(
                "SELECT task_id, seq, hash FROM chain_heads WHERE task_id = ANY($1::text[])",
                task_ids,
            )
        }
        if prepared is not None and _agrees(prepared.plan, stored, heads):
            plan, rows = prepared.plan, prepared.rows
        else:
            plan = plan_batch(batch, stored, heads)
            rows = event_rows(plan)
        if plan.links:
            await _apply(conn, schema, plan, rows)
    return WriteResult(
        len(plan.links),
        plan.duplicates,
        {**heads, **plan.heads},
        replanned=prepared is not None and plan is not prepared.plan,
    )


def _agrees(plan: BatchPlan, stored: set[str], heads: Heads) -> bool:
    """Whether the database is in the state a prepared plan assumed."""
    if stored:
        return False
    new = (0, GENESIS)
    return all(heads.get(task, new) == base for task, base in plan.bases.items())


def event_rows(plan: BatchPlan) -> list[Row]:
    """The rows of the events table that a plan adds, in `EVENT_COLUMNS` order."""
    rows: list[Row] = []
    append = rows.append
    for link in plan.links:
        item = link.item
        ev = item.event
        append(
            (
                ev.event_id,
                ev.task_id,
                link.seq,
                ev.type,
                ev.system,
                ev.agent,
                ev.step_id,
                ev.attempt,
                ev.at,
                ev.trace_id,
                ev.source,
                _json(ev.data),
                item.body.decode("utf-8"),
                link.prev_hash,
                link.hash,
                item.topic,
                item.partition,
                item.offset,
            )
        )
    return rows


async def _apply(conn: asyncpg.Connection, schema: str, plan: BatchPlan, rows: list[Row]) -> None:
    # The global sequence numbers, last before the COPY: the row lock on ledger_sequence is held
    # to the commit, so numbers are given without gaps and become visible in order.
    last: int = await conn.fetchval(
        "UPDATE ledger_sequence SET last = last + $1 RETURNING last", len(rows)
    )
    first = last - len(rows) + 1
    await conn.copy_records_to_table(
        "events",
        records=[(*row, first + n) for n, row in enumerate(rows)],
        columns=STORED_COLUMNS,
        schema_name=schema,
    )
    heads = plan.heads
    await conn.execute(
        "INSERT INTO chain_heads (task_id, seq, hash)"
        " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])"
        " ON CONFLICT (task_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
        list(heads),
        [h[0] for h in heads.values()],
        [h[1] for h in heads.values()],
    )
    await _upsert_tasks(conn, plan)
    if plan.spend:
        await _upsert_spend(conn, plan)
    if plan.approvals:
        await _upsert_approvals(conn, plan)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


async def _upsert_tasks(conn: asyncpg.Connection, plan: BatchPlan) -> None:
    tasks = [plan.tasks[task_id] for task_id in sorted(plan.tasks)]  # one lock order, as spend
    await conn.execute(
        """
        INSERT INTO tasks (task_id, system, status, input, output, error, submitted_by,
                           created_at, started_at, finished_at, model_calls, unpriced_calls,
                           input_tokens, output_tokens, cached_tokens, cost_usd, events)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[],
                             $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                             $10::timestamptz[], $11::bigint[], $12::bigint[], $13::bigint[],
                             $14::bigint[], $15::bigint[], $16::numeric[], $17::bigint[])
        ON CONFLICT (task_id) DO UPDATE SET
            system = CASE WHEN EXCLUDED.system <> '' THEN EXCLUDED.system ELSE tasks.system END,
            status = CASE WHEN task_status_rank(EXCLUDED.status) >= task_status_rank(tasks.status)
                          THEN EXCLUDED.status ELSE tasks.status END,
            input = COALESCE(EXCLUDED.input, tasks.input),
            output = COALESCE(EXCLUDED.output, tasks.output),
            error = COALESCE(EXCLUDED.error, tasks.error),
            submitted_by = CASE WHEN EXCLUDED.submitted_by <> '' THEN EXCLUDED.submitted_by
                                ELSE tasks.submitted_by END,
            created_at = LEAST(tasks.created_at, EXCLUDED.created_at),
            started_at = LEAST(tasks.started_at, EXCLUDED.started_at),
            finished_at = COALESCE(EXCLUDED.finished_at, tasks.finished_at),
            model_calls = tasks.model_calls + EXCLUDED.model_calls,
            unpriced_calls = tasks.unpriced_calls + EXCLUDED.unpriced_calls,
            input_tokens = tasks.input_tokens + EXCLUDED.input_tokens,
            output_tokens = tasks.output_tokens + EXCLUDED.output_tokens,
            cached_tokens = tasks.cached_tokens + EXCLUDED.cached_tokens,
            cost_usd = tasks.cost_usd + EXCLUDED.cost_usd,
            events = tasks.events + EXCLUDED.events,
            updated_at = now()
        """,
        [t.task_id for t in tasks],
        [t.system for t in tasks],
        [t.status for t in tasks],
        [t.input for t in tasks],
        [t.output for t in tasks],
        [t.error for t in tasks],
        [t.submitted_by for t in tasks],
        [t.created_at for t in tasks],
        [t.started_at for t in tasks],
        [t.finished_at for t in tasks],
        [t.model_calls for t in tasks],
        [t.unpriced_calls for t in tasks],
        [t.input_tokens for t in tasks],
        [t.output_tokens for t in tasks],
        [t.cached_tokens for t in tasks],
        [t.cost_usd for t in tasks],
        [t.events for t in tasks],
    )


async def _upsert_spend(conn: asyncpg.Connection, plan: BatchPlan) -> None:
    # Concurrent batches share rollup rows: taking their locks in one order cannot deadlock.
    keys = sorted(plan.spend)
    deltas = [plan.spend[k] for k in keys]
    await conn.execute(
        """
        INSERT INTO spend_hourly (hour, system, agent, model, calls, unpriced_calls,
                                  input_tokens, output_tokens, cached_tokens, cost_usd)
        SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[],
                             $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                             $9::bigint[], $10::numeric[])
        ON CONFLICT (hour, system, agent, model) DO UPDATE SET
            calls = spend_hourly.calls + EXCLUDED.calls,
            unpriced_calls = spend_hourly.unpriced_calls + EXCLUDED.unpriced_calls,
            input_tokens = spend_hourly.input_tokens + EXCLUDED.input_tokens,
            output_tokens = spend_hourly.output_tokens + EXCLUDED.output_tokens,
            cached_tokens = spend_hourly.cached_tokens + EXCLUDED.cached_tokens,
            cost_usd = spend_hourly.cost_usd + EXCLUDED.cost_usd
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [k[3] for k in keys],
        [d.calls for d in deltas],
        [d.unpriced_calls for d in deltas],
        [d.input_tokens for d in deltas],
        [d.output_tokens for d in deltas],
        [d.cached_tokens for d in deltas],
        [d.cost_usd for d in deltas],
    )


async def _upsert_approvals(conn: asyncpg.Connection, plan: BatchPlan) -> None:
    for change in plan.approvals:
        ev = change.event
        if change.requested is not None:
            req = change.requested
            await conn.execute(
                """
                INSERT INTO approvals (approval_id, task_id, system, agent, step_id, action,
                                       tool, model, arguments, reason, status, requested_at,
                                       expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, 'pending', $11, $12)
                ON CONFLICT (approval_id) DO UPDATE SET
                    system = EXCLUDED.system, agent = EXCLUDED.agent,
                    step_id = EXCLUDED.step_id, action = EXCLUDED.action,
                    tool = EXCLUDED.tool, model = EXCLUDED.model,
                    arguments = EXCLUDED.arguments, reason = EXCLUDED.reason,
                    requested_at = EXCLUDED.requested_at, expires_at = EXCLUDED.expires_at
                """,
                req.approval_id,
                ev.task_id,
                ev.system,
                ev.agent,
                ev.step_id,
                req.action,
                req.tool,
                req.model,
                _json(req.arguments),
                req.reason,
                ev.at,
                req.expires_at,
            )
        elif change.decided is not None:
            dec = change.decided
            await conn.execute(
                """
                INSERT INTO approvals (approval_id, task_id, system, agent, step_id, status,
                                       decided_by, decided_at, decision_reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (approval_id) DO UPDATE SET
                    status = EXCLUDED.status, decided_by = EXCLUDED.decided_by,
                    decided_at = EXCLUDED.decided_at, decision_reason = EXCLUDED.decision_reason
                """,
                dec.approval_id,
                ev.task_id,
                ev.system,
                ev.agent,
                ev.step_id,
                change.status,
                dec.decided_by,
                ev.at,
                dec.reason,
            )
