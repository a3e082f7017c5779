"""Per-task budgets of tokens and USD, kept in PostgreSQL.

Why PostgreSQL (asyncpg) and not a Kafka changelog: a reservation must be an atomic
check-and-add that every replica sees at once. Two replicas of the policy service, or one replica
answering five parallel branches of a task concurrently, all race for the last of a budget. A
single conditional `UPDATE ... SET used = used + $n WHERE used + $n <= cap` takes a row lock, and
PostgreSQL re-checks the condition after the lock is granted, so the sum of what is reserved never
exceeds the cap, whichever replica serves the request, whatever the partition assignment, and
across restarts (the state is durable the moment the transaction commits). A Kafka changelog would
need single-writer ownership per task (partition affinity between the request topic and the
usage events) and a restore on every rebalance before the first answer.

Model: one row per (task, policy) with the tokens and USD used so far (reserved + settled), and
one row per reservation (request id). A reservation adds the estimate to every applicable
policy's row in one transaction (rows locked in a fixed order: no deadlocks) or to none. The
`model.called` event settles it: the estimate is replaced by the actual usage, once (dedupe on
`event_id`). A reservation that is never settled (the replica died before calling) stays counted:
erring on the side of spending less.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from policy_service.rules import BudgetCap

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_MIGRATION = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.budget_usage (
    task_id text NOT NULL,
    policy text NOT NULL,
    tokens bigint NOT NULL DEFAULT 0,
    usd double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, policy)
);
CREATE TABLE IF NOT EXISTS {schema}.budget_reservations (
    request_id text PRIMARY KEY,
    task_id text NOT NULL,
    policies text[] NOT NULL,
    tokens bigint NOT NULL,
    usd double precision NOT NULL,
    settled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.budget_settlements (
    event_id text PRIMARY KEY,
    request_id text NOT NULL,
    tokens bigint NOT NULL,
    usd double precision NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {schema}.reserve_budget(
    p_request text, p_task text, p_policies text[], p_max_tokens bigint[],
    p_max_usd double precision[], p_tokens bigint, p_usd double precision
) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    i int;
    t bigint;
    u double precision;
BEGIN
    IF EXISTS (SELECT 1 FROM {schema}.budget_reservations WHERE request_id = p_request) THEN
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_policies, 1), 0) LOOP
        INSERT INTO {schema}.budget_usage (task_id, policy) VALUES (p_task, p_policies[i])
            ON CONFLICT DO NOTHING;
        UPDATE {schema}.budget_usage SET tokens = tokens + p_tokens, usd = usd + p_usd
            WHERE task_id = p_task AND policy = p_policies[i]
            AND (p_max_tokens[i] IS NULL
                 OR (tokens + p_tokens <= p_max_tokens[i] AND tokens < p_max_tokens[i]))
            AND (p_max_usd[i] IS NULL OR (usd + p_usd <= p_max_usd[i] AND usd < p_max_usd[i]))
            RETURNING tokens INTO t;
        IF NOT FOUND THEN
            SELECT b.tokens, b.usd INTO t, u FROM {schema}.budget_usage b
                WHERE b.task_id = p_task AND b.policy = p_policies[i];
            -- Undoes this call's earlier increments (the statement fails as a whole).
            RAISE EXCEPTION 'budget exceeded' USING ERRCODE = 'P0001',
                DETAIL = format('%s|%s|%s', i, t, u);
        END IF;
    END LOOP;
    INSERT INTO {schema}.budget_reservations (request_id, task_id, policies, tokens, usd)
        VALUES (p_request, p_task, p_policies, p_tokens, p_usd);
END
$fn$;
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    ok: bool
    cap: BudgetCap | None = None
    """The cap that refused, when not ok."""
    used_tokens: int = 0
    used_usd: float = 0.0
    rule: str = ""
    reason: str = ""


class BudgetStore:
    """Reservations and settlements on a PostgreSQL pool (schema `policy` by default)."""

    def __init__(self, pool: asyncpg.Pool, *, schema: str = "policy") -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        self._pool = pool
        self._schema = schema

    @classmethod
    async def connect(cls, dsn: str, *, schema: str = "policy") -> BudgetStore:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=16)
        store = cls(pool, schema=schema)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> None:
        """Create the schema and tables; replicas starting together serialize on a lock."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('podium.policy.migrate'))")
            await conn.execute(_MIGRATION.format(schema=self._schema))

    async def reserve(
        self,
        *,
        request_id: str,
        task_id: str,
        caps: Sequence[BudgetCap],
        tokens: int,
        usd: float,
    ) -> Reservation:
        """Add the estimate to every cap's usage, or to none when one would be crossed.

        A call is refused when it would cross a cap, or when the cap is already reached (even a
        call estimated at zero would spend something). Idempotent on `request_id`.
        """
        ordered = sorted(caps, key=lambda c: c.policy)
        try:
            # One round trip: the function adds to every cap's row or, by failing, to none.
            await self._pool.execute(
                f"SELECT {self._schema}.reserve_budget($1, $2, $3, $4, $5, $6, $7)",
                request_id,
                task_id,
                [c.policy for c in ordered],
                [c.max_tokens for c in ordered],
                [c.max_usd for c in ordered],
                tokens,
                usd,
            )
        except asyncpg.RaiseError as exc:
            index, used_tokens, used_usd = (exc.detail or "").split("|")
            return _refusal(ordered[int(index) - 1], int(used_tokens), float(used_usd), tokens, usd)
        return Reservation(ok=True)

    async def settle(
        self, *, event_id: str, request_id: str, tokens: int, usd: float | None
    ) -> bool:
        """Replace a reservation's estimate by the actual usage; once per event.

        `usd=None` (price unknown) keeps the estimated USD. A second usage event for the same
        reservation adds its usage. Returns False when the event was already applied or the
        request had no reservation.
        """
        s = self._schema
        async with self._pool.acquire() as conn, conn.transaction():
            reservation = await conn.fetchrow(
                f"SELECT task_id, policies, tokens, usd, settled FROM {s}.budget_reservations "
                "WHERE request_id = $1 FOR UPDATE",
                request_id,
            )
            if reservation is None:
                return False
            actual_usd = float(reservation["usd"]) if usd is None else usd
            inserted = await conn.fetchval(
                f"INSERT INTO {s}.budget_settlements (event_id, request_id, tokens, usd) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                event_id,
                request_id,
                tokens,
                actual_usd,
            )
            if not inserted:
                return False
            if reservation["settled"]:
                delta_tokens, delta_usd = tokens, actual_usd
            else:
                delta_tokens = tokens - int(reservation["tokens"])
                delta_usd = actual_usd - float(reservation["usd"])
                await conn.execute(
                    f"UPDATE {s}.budget_reservations SET settled = true WHERE request_id = $1",
                    request_id,
                )
            for policy in sorted(reservation["policies"]):
                await conn.execute(
                    f"UPDATE {s}.budget_usage SET tokens = GREATEST(tokens + $3, 0), "
                    "usd = GREATEST(usd + $4, 0) WHERE task_id = $1 AND policy = $2",
                    reservation["task_id"],
                    policy,
                    delta_tokens,
                    delta_usd,
                )
            return True

    async def usage(self, task_id: str) -> dict[str, tuple[int, float]]:
        """Tokens and USD used per policy by a task (reserved and settled)."""
        rows = await self._pool.fetch(
            f"SELECT policy, tokens, usd FROM {self._schema}.budget_usage WHERE task_id = $1",
            task_id,
        )
        return {r["policy"]: (int(r["tokens"]), float(r["usd"])) for r in rows}


def _refusal(
    cap: BudgetCap, used_tokens: int, used_usd: float, tokens: int, usd: float
) -> Reservation:
    if cap.max_tokens is not None and (
        used_tokens + tokens > cap.max_tokens or used_tokens >= cap.max_tokens
    ):
        return Reservation(
            ok=False,
            cap=cap,
            used_tokens=used_tokens,
            used_usd=used_usd,
            rule="max_tokens_per_task",
            reason=f"the task has used {used_tokens} of its {cap.max_tokens} tokens; this call "
            f"may use {tokens} more",
        )
    return Reservation(
        ok=False,
        cap=cap,
        used_tokens=used_tokens,
        used_usd=used_usd,
        rule="max_cost_per_task_usd",
        reason=f"the task has spent ${used_usd:.6f} of its ${cap.max_usd} budget; this call may "
        f"cost ${usd:.6f} more",
    )
