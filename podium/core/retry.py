"""The one retrying layer: exponential backoff with jitter (full by default; `equal` or `none`
as Orloj's tool retries ask), bounded by attempts and deadline.

Transient errors (`podium.core.errors.TransientError`) are retried; everything else propagates
at once.
A `retry_after_s` on the error (a vendor's `retry-after`) is a floor for the next wait, and is
honoured even above `max_delay_s`; the deadline still bounds it: when the next attempt could not
start before the deadline, the last error is raised without waiting.

The loop is tenacity's `AsyncRetrying` (which error retries, when to stop, the callback before
each wait, the sleep). Two parts are ours, plugged in as tenacity strategies:

- the wait (`backoff_delay`): tenacity's `wait_random_exponential` is the same full jitter, but it
  draws from the module-level `random` (no seeded generator can be passed, and `rng` is part of
  this API) and it cannot read a floor from the error that was raised (`retry_after_s`);
- the deadline: tenacity's `stop_before_delay` compares against the time since the first attempt
  on its own clock, while callers give an absolute deadline on the event loop's clock.

A service passes its `stop` event: no attempt starts once it is set, and a wait between attempts
ends as soon as it is set (`RetryStopped`); an attempt under way runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from podium.core.errors import PodiumError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

OnRetry = Callable[[int, TransientError, float], Awaitable[None] | None]
"""Called before each wait with (attempt that failed, 1-based; its error; seconds to wait)."""


class RetryStopped(PodiumError):
    """The service stopped while its attempts were failing; nothing more was tried."""


Jitter = Literal["full", "equal", "none"]
"""How a wait is drawn below its cap: uniform in [0, cap], in [cap/2, cap], or the cap itself."""


def backoff_delay(
    attempt: int,
    *,
    base_delay_s: float,
    max_delay_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
    jitter: Jitter = "full",
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): `jitter` over
    `min(max_delay_s, base_delay_s * 2**(attempt-1))`, at least `retry_after_s` when given."""
    cap = min(max_delay_s, base_delay_s * (2 ** (attempt - 1)))
    draw: float = max(cap, 0.0)
    if cap > 0 and jitter != "none":
        draw = float((rng or random).uniform(cap / 2 if jitter == "equal" else 0.0, cap))
    if retry_after_s is not None:
        return max(draw, retry_after_s)
    return draw


def _error(state: RetryCallState) -> TransientError:
    """The transient error the attempt of `state` raised (only those are retried)."""
    assert state.outcome is not None
    error = state.outcome.exception()
    assert isinstance(error, TransientError)
    return error


class _Backoff(wait_base):
    """`backoff_delay` as a tenacity wait; nothing is drawn after the last attempt."""

    def __init__(
        self,
        *,
        max_attempts: int,
        base_delay_s: float,
        max_delay_s: float,
        rng: random.Random | None,
        jitter: Jitter,
    ) -> None:
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._rng = rng
        self._jitter: Jitter = jitter

    def __call__(self, retry_state: RetryCallState) -> float:
        if retry_state.attempt_number >= self._max_attempts:
            return 0.0  # no wait follows: `stop_after_attempt` ends the loop
        return backoff_delay(
            retry_state.attempt_number,
            base_delay_s=self._base_delay_s,
            max_delay_s=self._max_delay_s,
            retry_after_s=_error(retry_state).retry_after_s,
            rng=self._rng,
            jitter=self._jitter,
        )


class _StopEvent(stop_base):
    """Stop as soon as the service's stop event is set."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._stop.is_set()


def _sleep_unless_stopped(stop: asyncio.Event | None) -> Callable[[float], Awaitable[None]]:
    """tenacity's sleep: the wait, cut short when `stop` is set."""

    async def sleep(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    return sleep


class _Deadline(stop_base):
    """Stop when the next attempt could not start before `deadline` (event-loop time).

    tenacity computes the wait before it asks the stop condition, so `upcoming_sleep` is the
    wait that would follow."""

    def __init__(self, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        self._deadline = deadline
        self._loop = loop

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._loop.time() + retry_state.upcoming_sleep >= self._deadline


async def retry_transient(
    fn: Callable[[], Awaitable[T]],
    *,
    max_attempts: int,
    base_delay_s: float,
    max_delay_s: float,
    deadline: float | None = None,
    on_retry: OnRetry | None = None,
    rng: random.Random | None = None,
    stop: asyncio.Event | None = None,
    jitter: Jitter = "full",
) -> T:
    """Await `fn()` until it returns, retrying `TransientError`; `max_attempts` attempts in all.

    `deadline` is in `asyncio.get_running_loop().time()` terms; no attempt starts after it.
    With `stop`, `RetryStopped` is raised (from the last error) when it is set before an attempt
    succeeds; a wait between attempts ends at once when it is set."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if stop is not None and stop.is_set():
        raise RetryStopped("stopped before the first attempt")
    ends: stop_base = stop_after_attempt(max_attempts)
    if deadline is not None:
        ends = ends | _Deadline(deadline, asyncio.get_running_loop())
    if stop is not None:
        ends = ends | _StopEvent(stop)

    async def before_sleep(state: RetryCallState) -> None:
        error, delay = _error(state), state.upcoming_sleep
        log.info("attempt %d failed (%s); retrying in %.3fs", state.attempt_number, error, delay)
        if on_retry is not None:
            result = on_retry(state.attempt_number, error, delay)
            if result is not None:
                await result

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=ends,
        wait=_Backoff(
            max_attempts=max_attempts,
            base_delay_s=base_delay_s,
            max_delay_s=max_delay_s,
            rng=rng,
            jitter=jitter,
        ),
        before_sleep=before_sleep,
        sleep=_sleep_unless_stopped(stop),
        reraise=True,
    )

    async def attempt() -> T:
        # A coroutine function, so that tenacity awaits it: `fn` may be a lambda that returns an
        # awaitable, which tenacity would take for a plain function and not await.
        if stop is not None and stop.is_set():
            raise _StoppedDuringWait
        return await fn()

    try:
        result: T = await retrying(attempt)
    except _StoppedDuringWait:
        raise RetryStopped("stopped while waiting to retry") from None
    except TransientError as exc:
        if stop is not None and stop.is_set():
            raise RetryStopped(f"stopped after a failed attempt: {exc}") from exc
        raise
    return result


class _StoppedDuringWait(Exception):
    """Raised in place of an attempt when the stop event was set during the wait before it."""
