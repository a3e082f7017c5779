"""A pooled connection that PostgreSQL ended while it sat idle is discarded, never reused.

When PostgreSQL ends a session (`pg_ctl stop -m fast`, `pg_terminate_backend`) it sends a FATAL
message, then closes the socket. A connection idle in the pool reads the message as unsolicited
and leaves its protocol in the error state; until the end of the stream reaches it, asyncpg
still counts it as open, and the next query on it fails with `InternalClientError: cannot switch
to state 12; another operation (2) is in progress`. A TCP proxy that holds the client's side of
the socket open for a moment after PostgreSQL closed its own makes that window wide enough to
hit every time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ledger._database import DatabaseUnavailable, connection
from ledger.batch import Part
from ledger.ingest import Ingester, _Fetched
from ledger.migrate import migrate
from ledger.plan import incoming
from ledger.settings import LedgerSettings
from ledger.store import create_pool
from podium.core.settings import KafkaSettings
from tests.ledger.conftest import task_events
from topics.names import TopicNames

pytestmark = pytest.mark.integration

KAFKA_UNUSED = KafkaSettings(bootstrap="127.0.0.1:9")
"""The heads lookup never reaches Kafka."""
HEADS = "SELECT task_id, seq, hash FROM chain_heads WHERE task_id = ANY($1::text[])"


class HoldingProxy:
    """Forwards TCP to PostgreSQL; when PostgreSQL closes a session, the client's side stays
    open until `release` is set (`upstream_closed` is set meanwhile)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.upstream_closed = asyncio.Event()
        self.release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HoldingProxy]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self.release.set()
            self._server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        to_server = asyncio.create_task(self._pipe(reader, up_writer))
        try:
            await self._pipe(up_reader, writer)  # until PostgreSQL closes the session
            self.upstream_closed.set()
            await self.release.wait()
        finally:
            to_server.cancel()
            await asyncio.gather(to_server, return_exceptions=True)
            writer.close()
            up_writer.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()


def _via(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))


@pytest.fixture
async def proxied_pool(
    database_url: str, pg_schema: str
) -> AsyncIterator[tuple[asyncpg.Pool, HoldingProxy]]:
    """A one-connection pool on the test's migrated schema, through a `HoldingProxy`."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, pg_schema)
    finally:
        await conn.close()
    target = urlsplit(database_url)
    async with HoldingProxy(target.hostname or "127.0.0.1", target.port or 5432).running() as proxy:
        pool = await create_pool(_via(database_url, proxy.port), pg_schema, size=1)
        try:
            yield pool, proxy
        finally:
            proxy.release.set()
            await pool.close()


async def _end_idle_session(database_url: str, pool: asyncpg.Pool, proxy: HoldingProxy) -> None:
    """PostgreSQL ends the pool's idle session; its FATAL message reaches the client, its end of
    stream does not yet."""
    async with pool.acquire() as conn:
        await conn.fetch(HEADS, ["t"])  # the statement is prepared and cached on it
        pid = conn.get_server_pid()
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.wait_for(proxy.upstream_closed.wait(), 10)
    await asyncio.sleep(0.1)  # the proxied FATAL message is read by the client's protocol


async def test_a_connection_ended_while_idle_is_discarded_and_the_next_one_works(
    database_url: str, proxied_pool: tuple[asyncpg.Pool, HoldingProxy]
) -> None:
    pool, proxy = proxied_pool
    await _end_idle_session(database_url, pool, proxy)
    with pytest.raises(DatabaseUnavailable, match="InternalClientError"):
        async with connection(pool) as conn:
            await conn.fetch(HEADS, ["t"])
    proxy.release.set()
    async with connection(pool) as conn:
        assert await conn.fetch(HEADS, ["t"]) == []


async def test_the_ingester_plans_in_the_transaction_when_its_heads_lookup_hits_such_a_connection(
    database_url: str, pg_schema: str, proxied_pool: tuple[asyncpg.Pool, HoldingProxy]
) -> None:
    pool, proxy = proxied_pool
    ingester = Ingester(pool, LedgerSettings(schema_name=pg_schema), KAFKA_UNUSED, TopicNames())
    fetched = _Fetched([Part([incoming(e) for e in task_events("broken-1")])], [], {})
    await _end_idle_session(database_url, pool, proxy)

    planned = await ingester._prepare(fetched)  # the reader's lookup: it used to crash here

    assert planned is fetched and planned.parts[0].prepared is None
    proxy.release.set()
    assert await ingester._prepare(fetched) is not fetched  # a new connection reads the heads
