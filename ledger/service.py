"""`podium ledger`: the ingest loop, the anchoring of its chain heads and the HTTP API, as one
`podium.core.lifecycle.Service`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Generator

import asyncpg
import uvicorn

from ledger._database import retry_until_stopped
from ledger.anchoring import Anchorer
from ledger.anchors import AnchorSigner
from ledger.api import Decider, create_app
from ledger.ingest import Ingester
from ledger.migrate import migrate
from ledger.settings import LedgerSettings
from ledger.store import create_pool
from ledger.submit import Submitter
from ledger.webhooks import Webhooks
from podium.core.settings import DatabaseSettings, KafkaSettings
from topics.names import TopicNames

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service's stop event governs it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


CONNECT_BASE_DELAY_S = 0.2
"""The first pause after a failed connection; it doubles up to `reconnect_max_s`."""


async def connect(
    database: DatabaseSettings, settings: LedgerSettings, stop: asyncio.Event
) -> asyncpg.Pool | None:
    """Migrate and open the pool, waiting for PostgreSQL while it is away; None if stopped."""

    async def attempt() -> asyncpg.Pool:
        conn = await asyncpg.connect(database.url, timeout=10)
        try:
            await migrate(conn, settings.schema_name)
        finally:
            await conn.close()
        return await create_pool(database.url, settings.schema_name, size=settings.pool_size)

    if stop.is_set():
        return None
    return await retry_until_stopped(
        attempt,
        stop,
        what="connecting to PostgreSQL",
        base_delay_s=CONNECT_BASE_DELAY_S,
        max_delay_s=settings.reconnect_max_s,
    )


class LedgerService:
    """Consumes events and results into PostgreSQL, and serves the API (unless disabled)."""

    name = "ledger"

    def __init__(
        self,
        settings: LedgerSettings,
        database: DatabaseSettings,
        kafka: KafkaSettings | None,
        *,
        ingest: bool = True,
        api: bool = True,
        decider: Decider | None = None,
        submitter: Submitter | None = None,
        webhooks: Webhooks | None = None,
        on_api_url: Callable[[str], None] | None = None,
        anchor_signer: AnchorSigner | None = None,
    ) -> None:
        """`decider` decides approvals for `POST /v1/approvals/...` (none: the API refuses);
        `submitter` submits the tasks of `POST /v1/tasks` (none: the API refuses);
        `webhooks` finds the TaskWebhooks of `POST /v1/webhook-deliveries/...` (none: 404);
        `on_api_url` learns the API's address once it listens (the dev stack records it);
        `anchor_signer` signs the chain heads published to the anchors topic while ingesting
        (none: no anchors; the composition root always gives one)."""
        if ingest and kafka is None:
            raise ValueError("ingesting needs Kafka settings")
        self.settings = settings
        self.database = database
        self.kafka = kafka
        self.names = TopicNames(kafka.topic_prefix) if kafka else TopicNames()
        self.ingest = ingest
        self.api = api
        self.decider = decider
        self.submitter = submitter
        self.webhooks = webhooks
        self.on_api_url = on_api_url
        self.anchor_signer = anchor_signer
        self.ingester: Ingester | None = None
        self.anchorer: Anchorer | None = None
        self.api_url: str | None = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        pool = await connect(self.database, self.settings, stop)
        if pool is None:
            return
        # What exists now (modules, settings, clients) lives as long as the process: keep it out
        # of the cyclic collector's full passes, which otherwise rescan it while every batch's
        # thousands of short-lived events are alive (a third of the ingest's CPU time).
        # Reference counting still frees those objects; only their cycle scanning stops.
        gc.freeze()
        try:
            async with asyncio.TaskGroup() as group:
                if self.ingest and self.kafka is not None:
                    self.ingester = Ingester(pool, self.settings, self.kafka, self.names)
                    drained = asyncio.Event()
                    group.create_task(
                        self._ingest(self.ingester, stop, drained), name="ledger-ingest"
                    )
                    if self.anchor_signer is not None:
                        self.anchorer = Anchorer(
                            pool,
                            self.kafka,
                            self.names,
                            self.anchor_signer,
                            self.settings.anchor_interval_s,
                        )
                        group.create_task(self.anchorer.run(stop, drained), name="ledger-anchor")
                if self.api:
                    group.create_task(self._serve(pool, stop), name="ledger-api")
                else:
                    self.ready.set()
        finally:
            if self.submitter is not None:
                await self.submitter.aclose()
            await pool.close()

    @staticmethod
    async def _ingest(ingester: Ingester, stop: asyncio.Event, drained: asyncio.Event) -> None:
        try:
            await ingester.run(stop)
        finally:
            drained.set()

    async def _serve(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        config = uvicorn.Config(
            create_app(pool, self.decider, self.submitter, self.webhooks),
            host=self.settings.api_host,
            port=self.settings.api_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if serving.done():
                    await serving  # raises the bind error
                    return
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            self.api_url = f"http://{self.settings.api_host}:{port}"
            log.info("ledger API on %s", self.api_url)
            if self.on_api_url is not None:
                self.on_api_url(self.api_url)
            self.ready.set()
            await stop.wait()
        finally:
            server.should_exit = True
            await serving
