"""`POST /v1/tasks`: the body, the deterministic task id of an idempotency key, and the table
that makes a retried submission return the first one's task id instead of submitting again."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Protocol

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from topics.messages import TaskRequested

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class SystemUnknown(LookupError):
    """The submitter knows no applied system of this name."""


class SubmitterUnavailable(RuntimeError):
    """The submitter cannot reach Kafka now; a retry may succeed."""


class Submitter(Protocol):
    async def submit(self, task: TaskRequested) -> None:
        """Write the task to the tasks topic (SystemUnknown if its system is not applied,
        SubmitterUnavailable if Kafka cannot be reached)."""
        ...

    async def aclose(self) -> None:
        """Release what the submissions opened (the ledger calls it as it stops)."""
        ...


class TaskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    input: str | dict[str, Any] = Field(description="A text, or a JSON object.")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key (from the same token name) returns the same task, once.",
    )
    timeout_s: float | None = Field(default=None, gt=0, le=86400)


def task_id_for(submitted_by: str, idempotency_key: str | None) -> str:
    """`task-` and 24 hex digits: derived from the token name and key, else random."""
    if idempotency_key is None:
        return f"task-{uuid.uuid4().hex[:24]}"
    digest = hashlib.sha256(f"{submitted_by}\0{idempotency_key}".encode()).hexdigest()
    return f"task-{digest[:24]}"


async def claim(
    conn: asyncpg.Connection, submitted_by: str, key: str, task_id: str, system: str
) -> str | None:
    """Record the key's task; None if this call recorded it, else the task id recorded before."""
    row = await conn.fetchrow(
        "INSERT INTO task_submissions (submitted_by, idempotency_key, task_id, system)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING task_id",
        submitted_by,
        key,
        task_id,
        system,
    )
    if row is not None:
        return None
    earlier: str = await conn.fetchval(
        "SELECT task_id FROM task_submissions WHERE submitted_by = $1 AND idempotency_key = $2",
        submitted_by,
        key,
    )
    return earlier


async def release(conn: asyncpg.Connection, submitted_by: str, key: str) -> None:
    """Forget a key whose task could not be submitted, so that a retry submits it."""
    await conn.execute(
        "DELETE FROM task_submissions WHERE submitted_by = $1 AND idempotency_key = $2",
        submitted_by,
        key,
    )
