"""The ledger's boundary with asyncpg: which failures are retried, and connections that are
never reused in a broken state.

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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from podium.core.errors import TransientError

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
