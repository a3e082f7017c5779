"""The one retrying layer: exponential backoff with full jitter, bounded by attempts and deadline.

Transient errors (`podium.core.errors.TransientError`) are retried; everything else propagates
at once.
A `retry_after_s` on the error (a vendor's `retry-after`) is a floor for the next wait, and is
honoured even above `max_delay_s`; the deadline still bounds it: when the next attempt could not
start before the deadline, the last error is raised without waiting."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from podium.core.errors import TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

OnRetry = Callable[[int, TransientError, float], Awaitable[None] | None]
"""Called before each wait with (attempt that failed, 1-based; its error; seconds to wait)."""


def backoff_delay(
    attempt: int,
    *,
    base_delay_s: float,
    max_delay_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): full jitter over
    `min(max_delay_s, base_delay_s * 2**(attempt-1))`, at least `retry_after_s` when given."""
    cap = min(max_delay_s, base_delay_s * (2 ** (attempt - 1)))
    draw = (rng or random).uniform(0.0, cap) if cap > 0 else 0.0
    if retry_after_s is not None:
        return max(draw, retry_after_s)
    return draw


async def retry_transient(
    fn: Callable[[], Awaitable[T]],
    *,
    max_attempts: int,
    base_delay_s: float,
    max_delay_s: float,
    deadline: float | None = None,
    on_retry: OnRetry | None = None,
    rng: random.Random | None = None,
) -> T:
    """Await `fn()` until it returns, retrying `TransientError`; `max_attempts` attempts in all.

    `deadline` is in `asyncio.get_running_loop().time()` terms; no attempt starts after it."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except TransientError as exc:
            if attempt >= max_attempts:
                raise
            delay = backoff_delay(
                attempt,
                base_delay_s=base_delay_s,
                max_delay_s=max_delay_s,
                retry_after_s=exc.retry_after_s,
                rng=rng,
            )
            if deadline is not None and loop.time() + delay >= deadline:
                raise
            log.info("attempt %d failed (%s); retrying in %.3fs", attempt, exc, delay)
            if on_retry is not None:
                result = on_retry(attempt, exc, delay)
                if result is not None:
                    await result
            await asyncio.sleep(delay)
