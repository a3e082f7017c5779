"""How every service runs: a `Service` runs until its stop event is set, then drains.

`podium <service>` runs one until SIGTERM/SIGINT; `podium dev` runs several in one process. A
service owns its background loops in a task group, so nothing outlives it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_GRACE_S = 20.0


class Service(Protocol):
    name: str

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
            await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            log.info("stopping %s (grace %.0f s)", ", ".join(s.name for s in services), grace_s)
            async with asyncio.timeout(grace_s):
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
