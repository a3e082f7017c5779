"""`CatalogWatcher`: the applied manifests, read from the compacted topic at start and followed
afterwards, as an always-consistent `Catalog` snapshot. Every service uses it for hot reload.

`start()` reads the topic to its end (creating it if needed) and builds the first Catalog; a
background task it owns then follows changes. A new Catalog replaces the old one only when the
watcher has caught up with the topic (so one apply, one transaction, is seen whole).

A record that is not valid (on its own, or with the others) is skipped: the Catalog keeps every
valid resource (`manifests.screening`), and the watcher logs the record (topic, partition,
offset, key, reason) and sends it to `<p>.manifests.dlq` (`manifests.dead_letters`), once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from manifests._topic import ManifestLog, manifest_consumer, read_until_end
from manifests.catalog import Catalog
from manifests.dead_letters import RejectionReporter
from manifests.screening import screen
from podium.core.settings import KafkaSettings
from topics.kafka import ensure_topics
from topics.names import TopicNames
from topics.tables import assign_from_beginning, partitions_of

log = logging.getLogger(__name__)

Callback = Callable[[Catalog], Awaitable[None] | None]


class CatalogSource(Protocol):
    """Where the current catalog comes from, and how to wait for one (`CatalogWatcher`)."""

    @property
    def catalog(self) -> Catalog: ...

    async def wait_for(
        self,
        predicate: Callable[[Catalog], bool],
        timeout: float,  # noqa: ASYNC109 (a deadline is part of this API)
    ) -> Catalog: ...


async def catalog_when(
    source: CatalogSource, predicate: Callable[[Catalog], bool], timeout_s: float
) -> Catalog:
    """The first catalog of `source` for which `predicate` holds, waiting at most `timeout_s`
    for it (a catalog still loading); after that, the current catalog, whatever it holds."""
    try:
        return await source.wait_for(predicate, timeout_s)
    except TimeoutError:
        return source.catalog


class CatalogWatcher:
    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        *,
        poll_ms: int = 100,
        service: str = "catalog",
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._poll_ms = poll_ms
        self._log = ManifestLog()
        self._reporter = RejectionReporter(kafka, names, service=service)
        self._catalog = Catalog.empty(names)
        self._version = 0
        self._changed = asyncio.Condition()
        self._subscribers: list[Callback] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def catalog(self) -> Catalog:
        """The latest valid Catalog (empty before anything is applied)."""
        return self._catalog

    @property
    def version(self) -> int:
        """Bumped on every new Catalog."""
        return self._version

    async def start(self) -> None:
        topic = self._names.manifests
        partitions = await partitions_of(self._kafka, topic)
        if not partitions:
            await ensure_topics(self._kafka, [topic], compacted=[topic], partitions=1)
            partitions = await partitions_of(self._kafka, topic)
        consumer = manifest_consumer(self._kafka)
        self._consumer = consumer
        try:
            await consumer.start()
            self._tps = await assign_from_beginning(consumer, topic, partitions)
            await read_until_end(consumer, self._tps, self._log)
        except BaseException:
            await consumer.stop()
            self._consumer = None
            raise
        await self._rebuild(notify=False)
        self._task = asyncio.create_task(self._follow(), name=f"catalog-watcher:{topic}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> CatalogWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(catalog)` on every new Catalog; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    async def wait_for(
        self,
        predicate: Callable[[Catalog], bool],
        timeout: float,  # noqa: ASYNC109 (a deadline is part of this API)
    ) -> Catalog:
        """The first Catalog (current or later) for which `predicate` holds; TimeoutError if none
        comes within `timeout` seconds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self._catalog))
            return self._catalog

    async def _follow(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        dirty = False
        while True:
            try:
                batches = await consumer.getmany(*self._tps, timeout_ms=self._poll_ms)
                for messages in batches.values():
                    for message in messages:
                        dirty |= self._log.fold(message)
                if (dirty or self._log.has_rejections) and await self._caught_up(consumer):
                    if dirty:
                        dirty = False
                        await self._rebuild(notify=True)
                    else:  # only records rejected on their own: the catalog is the same
                        await self._reporter.report(self._log.drain())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catalog watcher: error while following %s", self._names.manifests)
                await asyncio.sleep(1.0)

    async def _caught_up(self, consumer: AIOKafkaConsumer) -> bool:
        for tp in self._tps:
            end = consumer.last_stable_offset(tp)
            if end is None:
                end = consumer.highwater(tp)
            if end is None or await consumer.position(tp) < end:
                return False
        return True

    async def _rebuild(self, *, notify: bool) -> None:
        screened = screen(self._log.versions, self._names)
        self._log.keep_from(screened.chosen)
        await self._reporter.report([*self._log.drain(), *screened.rejected])
        catalog = screened.catalog
        self._catalog = catalog
        self._version += 1
        async with self._changed:
            self._changed.notify_all()
        if not notify:
            return
        for callback in list(self._subscribers):
            try:
                result = callback(catalog)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("catalog watcher: a subscriber failed")
