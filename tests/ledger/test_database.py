"""The ledger's boundary with asyncpg, without a database: which failures are retried, and that
a broken connection is discarded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest

from ledger._database import DatabaseUnavailable, connection


class FakeConnection:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.terminated = False

    async def fetch(self, query: str, *args: object) -> list[Any]:
        if self.error is not None:
            raise self.error
        return []

    def terminate(self) -> None:
        self.terminated = True


class FakePool:
    """Hands out one connection, as `asyncpg.Pool.acquire` does."""

    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConnection]:
        yield self.conn


async def _fetch_on(conn: FakeConnection) -> list[Any]:
    async with connection(cast(asyncpg.Pool, FakePool(conn))) as pooled:
        rows: list[Any] = await pooled.fetch("SELECT 1")
        return rows


async def test_a_connection_in_a_broken_protocol_state_is_terminated_and_the_work_retried() -> None:
    broken = FakeConnection(
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        )
    )
    with pytest.raises(DatabaseUnavailable, match="InternalClientError: cannot switch"):
        await _fetch_on(broken)
    assert broken.terminated


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError("refused"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ],
)
async def test_a_lost_connection_is_database_unavailable(error: BaseException) -> None:
    conn = FakeConnection(error)
    with pytest.raises(DatabaseUnavailable):
        await _fetch_on(conn)
    assert not conn.terminated  # the pool already knows it is closed


async def test_a_refusal_by_postgresql_passes_as_it_is() -> None:
    conn = FakeConnection(asyncpg.CharacterNotInRepertoireError("invalid byte sequence"))
    with pytest.raises(asyncpg.CharacterNotInRepertoireError):
        await _fetch_on(conn)
    assert not conn.terminated
