"""`catalog_when`: the first catalog that satisfies a predicate, else the current one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from manifests.catalog import Catalog
from manifests.watcher import catalog_when


class _Source:
    """A catalog source whose catalog changes once, after `delay_s`."""

    def __init__(self, later: Catalog, delay_s: float) -> None:
        self.catalog = Catalog.empty()
        self._later = later
        self._delay_s = delay_s

    async def wait_for(self, predicate: Callable[[Catalog], bool], timeout: float) -> Catalog:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            if not predicate(self.catalog):
                await asyncio.sleep(self._delay_s)
                self.catalog = self._later
            if not predicate(self.catalog):
                await asyncio.Event().wait()
            return self.catalog


async def test_gives_the_catalog_once_the_predicate_holds() -> None:
    later = Catalog.empty()
    source = _Source(later, delay_s=0.01)
    assert await catalog_when(source, lambda c: c is later, 1.0) is later


async def test_gives_the_current_catalog_after_the_timeout() -> None:
    source = _Source(Catalog.empty(), delay_s=0.01)
    current = await catalog_when(source, lambda c: False, 0.05)
    assert current is source.catalog
