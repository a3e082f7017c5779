"""The ledger's boundary with asyncpg: which failures are retried, connections that are never
reused in a broken state, and retrying with backoff until the service stops.

asyncpg's connection-level failures are translated here, once, into `DatabaseUnavailable` (a
`TransientError`): the same work is retried as it is, on another connection.
`asyncpg.InternalClientError` is one of them. asyncpg raises it when its protocol state machine
does not allow the next operation on a connection: typically a connection that PostgreSQL ended
(`pg_ctl stop`, `pg_terminate_backend`) while it sat idle in the pool, whose `FATAL` message has
been read but whose end of stream not yet, is handed out again and its first query finds it
"in" the error state. Such a connection can never be used again: it is terminated here, so the
pool opens a new one, instead of being reset and handed out again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg

from podium.core.errors import TransientError
from podium.core.retry import RetryStopped, retry_transient

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)
"""Errors after which the same work is retried as it is: the database went away, the connection
broke (`InternalClientError`, see the module docstring), or a concurrent writer raced us on an
event id."""


class DatabaseUnavailable(TransientError):
    """PostgreSQL could not do the work now (see `TRANSIENT_DB_ERRORS`); retry it as it is."""


def unavailable(exc: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool. One whose protocol is broken (`InternalClientError`) is
    terminated rather than returned; transient failures are raised as `DatabaseUnavailable`.
    PostgreSQL's refusals (`asyncpg.PostgresError` outside `TRANSIENT_DB_ERRORS`) pass as they
    are."""
    try:
        async with pool.acquire() as conn:
            try:
                yield conn
            except asyncpg.InternalClientError:
                conn.terminate()
                raise
    except TRANSIENT_DB_ERRORS as exc:
        raise unavailable(exc) from exc


async def retry_until_stopped(
    attempt: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    *,
    what: str,
    base_delay_s: float,
    max_delay_s: float,
) -> T | None:
    """`attempt()` until it returns, retrying `DatabaseUnavailable` with capped, jittered
    backoff (`podium.core.retry`), for as long as the service runs; None if `stop` is set first.

    An attempt under way when `stop` is set runs to its end (a write in flight is finished, not
    cut off): if it succeeds its result is returned; if it fails there is no further attempt.
    Only the wait between attempts is cut short."""

    async def once() -> T:
        try:
            return await attempt()
        except TRANSIENT_DB_ERRORS as exc:
            raise unavailable(exc) from exc

    def on_retry(failed: int, exc: TransientError, delay: float) -> None:
        log.warning("%s failed (%s); retrying in %.2f s (attempt %d)", what, exc, delay, failed)

    try:
        return await retry_transient(
            once,
            max_attempts=sys.maxsize,
            base_delay_s=base_delay_s,
            max_delay_s=max_delay_s,
            on_retry=on_retry,
            stop=stop,
        )
    except RetryStopped:
        return None
