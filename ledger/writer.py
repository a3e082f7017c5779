"""Storing the parts of a batch: each in its own transaction, concurrently, retried while
PostgreSQL is away, and event by event when PostgreSQL refuses the whole.

A part is written with `store.write_batch` on a connection of the pool (`_database.connection`:
one left broken is discarded, never reused). A transient failure (`DatabaseUnavailable`) retries
the same part with backoff until it is stored or the service stops. A data error (PostgreSQL
refuses the batch, e.g. a NUL character in one event) stores the part event by event and returns
the events it refuses, which the caller dead-letters.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from ledger import _spans
from ledger._database import TRANSIENT_DB_ERRORS, connection, retry_until_stopped
from ledger.batch import Dead, HeadsCache, Part, record_of
from ledger.plan import Incoming
from ledger.settings import LedgerSettings
from ledger.store import PreparedBatch, WriteResult, write_batch

log = logging.getLogger(__name__)

RETRY_BASE_DELAY_S = 0.1
"""The first pause after a failed write; it doubles up to `reconnect_max_s`."""


class BatchWriter:
    """Writes parts of batches into the ledger's schema and counts what it stored."""

    def __init__(self, pool: asyncpg.Pool, settings: LedgerSettings, heads: HeadsCache) -> None:
        self._pool = pool
        self._settings = settings
        self._heads = heads
        self.stored = 0
        self.duplicates = 0
        self.replanned = 0

    async def store(self, parts: list[Part], stop: asyncio.Event) -> list[Dead] | None:
        """Write every part, concurrently, in the spans of its tasks' traces; the events
        PostgreSQL refuses, or None if stopped before every part was stored."""
        with _spans.storing([item for part in parts for item in part.items]) as spans:
            if len(parts) == 1:
                outcomes = [await self._store_part(parts[0], stop)]
            else:
                async with asyncio.TaskGroup() as group:
                    running = [group.create_task(self._store_part(p, stop)) for p in parts]
                outcomes = [task.result() for task in running]
            refused: list[Dead] = []
            for outcome in outcomes:
                if outcome is None:
                    spans.fail("the service stopped before the batch was stored")
                    return None
                refused += outcome
            return refused

    async def _store_part(self, part: Part, stop: asyncio.Event) -> list[Dead] | None:
        return await retry_until_stopped(
            lambda: self._write(part.items, part.prepared),
            stop,
            what="ledger write",
            base_delay_s=RETRY_BASE_DELAY_S,
            max_delay_s=self._settings.reconnect_max_s,
        )

    async def _write(self, items: list[Incoming], prepared: PreparedBatch | None) -> list[Dead]:
        """Store the batch; if PostgreSQL refuses it for a data error, store item by item and
        return the ones it refuses."""
        schema = self._settings.schema_name
        async with connection(self._pool) as conn:
            try:
                self._count(await write_batch(conn, schema, items, prepared), prepared)
                return []
            except TRANSIENT_DB_ERRORS:
                raise
            except asyncpg.PostgresError as exc:
                log.warning("batch refused (%s); storing its %d events one by one", exc, len(items))
            refused: list[Dead] = []
            for item in items:
                try:
                    self._count(await write_batch(conn, schema, [item]), None)
                except TRANSIENT_DB_ERRORS:
                    raise
                except asyncpg.PostgresError as exc:
                    refused.append(Dead(record_of(item), f"PostgreSQL refused the event: {exc}"))
            return refused

    def _count(self, result: WriteResult, prepared: PreparedBatch | None) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        if prepared is None or result.replanned:
            # The chains moved otherwise than the reader assumed: it plans on the real heads
            # from now on (a batch it prepared meanwhile is checked and planned again).
            self.replanned += result.replanned
            self._heads.remember(result.heads)
