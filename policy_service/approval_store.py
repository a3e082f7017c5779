"""The approvals the policy service issued, kept in PostgreSQL: the only approvals that count.

An approval exists because the policy service decided `approval_required` on a call and recorded
it here (`issue`) before it replied; a record on the approvals topic naming any other id is never
honoured. The record binds the approval to the call it was issued for (task, agent, tool, the
SHA-256 of its arguments) and to its expiry, and `claim` spends it: one atomic update, so an
approval allows one call, whichever replica answers (a redelivery of the same request is the same
use). The rows live beside the budgets, in the policy service's schema, on the budgets' pool.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from policy_service.approval_book import IssuedApproval
from topics.messages import AuthorizationRequest

_MIGRATION = """
CREATE TABLE IF NOT EXISTS {schema}.approvals_issued (
    approval_id text PRIMARY KEY,
    task_id text NOT NULL,
    system text NOT NULL,
    agent text NOT NULL,
    tool text NOT NULL,
    arguments_digest text NOT NULL,
    issued_for text NOT NULL,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_by text,
    used_at timestamptz
);
"""


class ApprovalStore:
    """Issued approvals in `{schema}.approvals_issued`, on the given pool."""

    def __init__(self, pool: asyncpg.Pool, *, schema: str) -> None:
        self._pool = pool
        self._schema = schema

    async def migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('podium.policy.migrate'))")
            await conn.execute(_MIGRATION.format(schema=self._schema))

    async def issue(
        self, approval_id: str, request: AuthorizationRequest, *, at: datetime, expires_at: datetime
    ) -> None:
        """Record an approval issued for `request` (idempotent on the id)."""
        await self._pool.execute(
            f"INSERT INTO {self._schema}.approvals_issued (approval_id, task_id, system, agent, "
            "tool, arguments_digest, issued_for, issued_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (approval_id) DO NOTHING",
            approval_id,
            request.task_id,
            request.system,
            request.agent,
            request.tool or "",
            request.arguments_digest,
            request.request_id,
            at,
            expires_at,
        )

    async def get(self, approval_id: str) -> IssuedApproval | None:
        row = await self._pool.fetchrow(
            "SELECT approval_id, task_id, system, agent, tool, arguments_digest, issued_for, "
            f"expires_at, used_by FROM {self._schema}.approvals_issued WHERE approval_id = $1",
            approval_id,
        )
        return None if row is None else IssuedApproval(**dict(row))

    async def claim(self, approval_id: str, request_id: str) -> bool:
        """Spend the approval on request `request_id`: True when this request holds it (now or
        from before, a redelivery), False when another request used it."""
        row = await self._pool.fetchrow(
            f"UPDATE {self._schema}.approvals_issued SET used_by = $2, used_at = now() "
            "WHERE approval_id = $1 AND (used_by IS NULL OR used_by = $2) RETURNING used_by",
            approval_id,
            request_id,
        )
        return row is not None
