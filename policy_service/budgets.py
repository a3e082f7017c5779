"""Per-task budgets of tokens and USD, kept in PostgreSQL.

Why PostgreSQL (asyncpg) and not a Kafka changelog: a reservation must be an atomic
check-and-add that every replica sees at once. Two replicas of the policy service, or one replica
answering five parallel branches of a task concurrently, all race for the last of a budget. The
rows a reservation checks are locked (`SELECT ... FOR UPDATE`) before the check, so the sum of
what is reserved never exceeds the cap, whichever replica serves the request, whatever the
partition assignment, and across restarts (the state is durable the moment the transaction
commits). A Kafka changelog would need single-writer ownership per task (partition affinity
between the request topic and the usage events) and a restore on every rebalance before the
first answer.

Model: one row per (task, policy) with the tokens and USD used so far (reserved + settled), and
one row per reservation (request id). The reservations of a fetched batch of requests go to the
database together, in one round trip and one transaction (`reserve_many`, the `reserve_budgets`
function): every row of the batch is locked in one fixed order (no deadlocks), then the requests
are applied in batch order, each to every applicable policy's row or to none. The
`model.called` event settles a reservation: the estimate is replaced by the actual usage, once
(dedupe on `event_id`). A reservation that is never settled (the replica died before calling)
stays counted: erring on the side of spending less.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import asyncpg

from policy_service.reservation import BudgetRequest, Reservation, refusal

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
DROP FUNCTION IF EXISTS {schema}.reserve_budget(
    text, text, text[], bigint[], double precision[], bigint, double precision);
-- The reservations of one fetched batch of requests, in one round trip. Request i has
-- p_cap_counts[i] caps, which are the next entries of the flattened p_cap_* arrays (sorted by
-- policy). Requests are applied in order, each to every cap's row or to none; one row per
-- request comes back: refused_cap NULL (reserved, or already reserved under this request id) or
-- the flattened index of the cap that refused, with that cap's usage.
--
-- Check-then-update rather than a sub-block with EXCEPTION per request: each EXCEPTION block is a
-- subtransaction (a savepoint, a subtransaction id, and a release or rollback), paid by every
-- request, while here every row the batch touches is locked first, so a check made under the
-- lock stays true until the update, and a refused request has nothing to undo.
CREATE OR REPLACE FUNCTION {schema}.reserve_budgets(
    p_requests text[], p_tasks text[], p_tokens bigint[], p_usd double precision[],
    p_cap_counts int[], p_cap_tasks text[], p_cap_policies text[],
    p_cap_max_tokens bigint[], p_cap_max_usd double precision[]
) RETURNS TABLE (request_index int, refused_cap int, used_tokens bigint,
                 used_usd double precision)
LANGUAGE plpgsql AS $fn$
DECLARE
    i int;
    k int;
    first int := 1;
    last int;
    t bigint;
    u double precision;
BEGIN
    -- Create the missing rows, then lock every row of the batch in one global order (task,
    -- policy): two batches in flight (one replica pipelining, or two replicas) wait for each
    -- other's rows in the same order, so they never deadlock, and once locked a row's usage
    -- cannot change under this batch until it commits.
    INSERT INTO {schema}.budget_usage (task_id, policy)
        SELECT DISTINCT c.task_id, c.policy
        FROM unnest(p_cap_tasks, p_cap_policies) AS c(task_id, policy)
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
    PERFORM 1 FROM {schema}.budget_usage b
        WHERE (b.task_id, b.policy) IN (
            SELECT c.task_id, c.policy
            FROM unnest(p_cap_tasks, p_cap_policies) AS c(task_id, policy))
        ORDER BY b.task_id, b.policy
        FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_requests, 1), 0) LOOP
        last := first + p_cap_counts[i] - 1;
        request_index := i;
        refused_cap := NULL;
        used_tokens := NULL;
        used_usd := NULL;
        -- Idempotent on the request id: a request already reserved (a redelivery, or a retry
        -- that a replica answered before a rebalance) is not counted twice.
        IF NOT EXISTS (
            SELECT 1 FROM {schema}.budget_reservations r WHERE r.request_id = p_requests[i]
        ) THEN
            FOR k IN first .. last LOOP
                SELECT b.tokens, b.usd INTO t, u FROM {schema}.budget_usage b
                    WHERE b.task_id = p_tasks[i] AND b.policy = p_cap_policies[k];
                -- Refused when the call would cross the cap, or when the cap is already reached
                -- (even a call estimated at zero spends something).
                IF (p_cap_max_tokens[k] IS NOT NULL
                        AND (t + p_tokens[i] > p_cap_max_tokens[k] OR t >= p_cap_max_tokens[k]))
                   OR (p_cap_max_usd[k] IS NOT NULL
                        AND (u + p_usd[i] > p_cap_max_usd[k] OR u >= p_cap_max_usd[k])) THEN
                    refused_cap := k;
                    used_tokens := t;
                    used_usd := u;
                    EXIT;
                END IF;
            END LOOP;
            IF refused_cap IS NULL THEN
                INSERT INTO {schema}.budget_reservations
                        (request_id, task_id, policies, tokens, usd)
                    VALUES (p_requests[i], p_tasks[i], p_cap_policies[first:last], p_tokens[i],
                            p_usd[i])
                    ON CONFLICT DO NOTHING;
                IF FOUND THEN
                    UPDATE {schema}.budget_usage b
                        SET tokens = b.tokens + p_tokens[i], usd = b.usd + p_usd[i]
                        WHERE b.task_id = p_tasks[i]
                        AND b.policy = ANY (p_cap_policies[first:last]);
                END IF;
            END IF;
        END IF;
        first := last + 1;
        RETURN NEXT;
    END LOOP;
END
$fn$;
"""


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

    @property
    def pool(self) -> asyncpg.Pool:
        """The store's pool (the issued approvals share it)."""
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> None:
        """Create the schema and tables; replicas starting together serialize on a lock."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('podium.policy.migrate'))")
            await conn.execute(_MIGRATION.format(schema=self._schema))

    async def reserve_many(self, requests: Sequence[BudgetRequest]) -> list[Reservation]:
        """Reserve each request's estimate on every one of its caps, or on none; in one round trip.

        Requests are applied in the given order (two requests of one task that together cross a
        cap: the first is reserved, the second refused). A request is refused when it would cross
        a cap, or when the cap is already reached (even a call estimated at zero would spend
        something). Idempotent on `request_id`. Returns one `Reservation` per request, in order.
        """
        if not requests:
            return []
        ordered = [sorted(r.caps, key=lambda c: c.policy) for r in requests]
        caps = [(r.task_id, c) for r, cs in zip(requests, ordered, strict=True) for c in cs]
        rows = await self._pool.fetch(
            f"SELECT request_index, refused_cap, used_tokens, used_usd "
            f"FROM {self._schema}.reserve_budgets($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ORDER BY request_index",
            [r.request_id for r in requests],
            [r.task_id for r in requests],
            [r.tokens for r in requests],
            [r.usd for r in requests],
            [len(cs) for cs in ordered],
            [task for task, _ in caps],
            [c.policy for _, c in caps],
            [c.max_tokens for _, c in caps],
            [c.max_usd for _, c in caps],
        )
        if len(rows) != len(requests):
            raise RuntimeError(f"reserve_budgets answered {len(rows)} of {len(requests)} requests")
        results: list[Reservation] = []
        for request, row in zip(requests, rows, strict=True):
            if row["refused_cap"] is None:
                results.append(Reservation(ok=True))
                continue
            _, cap = caps[int(row["refused_cap"]) - 1]
            results.append(
                refusal(
                    cap,
                    int(row["used_tokens"]),
                    float(row["used_usd"]),
                    request.tokens,
                    request.usd,
                )
            )
        return results

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
