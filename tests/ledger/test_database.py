"""The ledger's boundary with asyncpg, without a database: which failures are retried, that a
broken connection is discarded, and retrying until the service stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest

from ledger._database import DatabaseUnavailable, connection, retry_until_stopped


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


class Flaky:
    """Fails with a lost connection `failures` times, then returns `"done"`."""

    def __init__(self, failures: int, *, started: asyncio.Event | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.started = started
        self.proceed = asyncio.Event()
        self.proceed.set()

    async def __call__(self) -> str:
        self.calls += 1
        if self.started is not None:
            self.started.set()
        await self.proceed.wait()
        if self.calls <= self.failures:
            raise ConnectionResetError("reset by peer")
        return "done"


async def test_retries_while_the_database_is_away() -> None:
    attempt = Flaky(3)
    result = await retry_until_stopped(
        attempt, asyncio.Event(), what="write", base_delay_s=0.001, max_delay_s=0.001
    )
    assert (result, attempt.calls) == ("done", 4)


async def test_stop_cuts_the_wait_between_attempts_short() -> None:
    stop = asyncio.Event()
    attempt = Flaky(10**6)
    retrying = asyncio.create_task(
        retry_until_stopped(attempt, stop, what="write", base_delay_s=30, max_delay_s=30)
    )
    await asyncio.sleep(0.05)  # the first attempt has failed; the wait is up to 30 s
    stop.set()
    assert await asyncio.wait_for(retrying, 2) is None
    assert attempt.calls >= 1


async def test_an_attempt_under_way_when_stop_comes_runs_to_its_end() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    attempt = Flaky(0, started=started)
    attempt.proceed.clear()
    retrying = asyncio.create_task(
        retry_until_stopped(attempt, stop, what="write", base_delay_s=1, max_delay_s=1)
    )
    await started.wait()
    stop.set()
    await asyncio.sleep(0.01)
    assert not retrying.done()
    attempt.proceed.set()
    assert await retrying == "done"


async def test_a_failing_attempt_after_stop_is_not_retried() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    attempt = Flaky(1, started=started)
    attempt.proceed.clear()
    retrying = asyncio.create_task(
        retry_until_stopped(attempt, stop, what="write", base_delay_s=1, max_delay_s=1)
    )
    await started.wait()
    stop.set()
    attempt.proceed.set()
    assert await retrying is None
    assert attempt.calls == 1


async def test_an_error_that_is_not_transient_propagates() -> None:
    async def refused() -> None:
        raise asyncpg.CharacterNotInRepertoireError("invalid byte sequence")

    with pytest.raises(asyncpg.CharacterNotInRepertoireError):
        await retry_until_stopped(
            refused, asyncio.Event(), what="write", base_delay_s=0.001, max_delay_s=0.001
        )
