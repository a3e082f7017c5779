"""How every service runs: a `Service` runs until its stop event is set, then drains.

`podium <service>` runs one until SIGTERM/SIGINT; `podium dev` runs several in one process. A
service owns its background loops in a task group, so nothing outlives it.

Each service sets its `ready` event once it serves (its consumers have their partitions, its API
listens). When every service of the process is ready, `run_services` logs one line containing
`READY_LINE` (followed by the services' names): what a supervisor, or a test, waits for before it
counts on the process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 20.0
READY_LINE = "podium services ready:"


class Service(Protocol):
    name: str
    ready: asyncio.Event
    """Set once the service serves (its consumers are assigned, its API listens)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set, then finish in-flight work and close."""
        ...


async def run_services(services: Sequence[Service], *, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Run services until SIGTERM/SIGINT (or until one fails), then stop them all."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(s.run(stop), name=s.name) for s in services]
            waiter = group.create_task(stop.wait())
            group.create_task(_announce_ready(services, stop))
            await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            log.info("stopping %s (grace %.0f s)", ", ".join(s.name for s in services), grace_s)
            async with asyncio.timeout(grace_s):
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def set_when_all(
    ready: asyncio.Event, parts: Iterable[asyncio.Event], stop: asyncio.Event
) -> bool:
    """Set `ready` once every event of `parts` is set; give up (False) when `stop` is set first."""
    waiting: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(asyncio.gather(*(part.wait() for part in parts))),
        asyncio.ensure_future(stop.wait()),
    ]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in waiting:
            future.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    if stop.is_set():
        return False
    ready.set()
    return True


async def _announce_ready(services: Sequence[Service], stop: asyncio.Event) -> None:
    if await set_when_all(asyncio.Event(), [s.ready for s in services], stop):
        log.info("%s %s", READY_LINE, ", ".join(s.name for s in services))
