from __future__ import annotations

import asyncio
import random

import pytest

from podium.core.errors import PermanentError, TransientError
from podium.core.retry import RetryStopped, backoff_delay, retry_transient


class Flaky:
    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.error = error or TransientError("hiccup")

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


async def test_retries_transient_until_success() -> None:
    fn = Flaky(2)
    waits: list[tuple[int, float]] = []
    result = await retry_transient(
        fn,
        max_attempts=5,
        base_delay_s=0.001,
        max_delay_s=0.002,
        on_retry=lambda attempt, error, delay: waits.append((attempt, delay)),
    )
    assert result == "ok" and fn.calls == 3
    assert [a for a, _ in waits] == [1, 2]
    assert all(0 <= d <= 0.002 for _, d in waits)


async def test_gives_up_after_max_attempts() -> None:
    fn = Flaky(10)
    with pytest.raises(TransientError, match="hiccup"):
        await retry_transient(fn, max_attempts=3, base_delay_s=0.001, max_delay_s=0.001)
    assert fn.calls == 3


async def test_permanent_errors_are_not_retried() -> None:
    fn = Flaky(1, PermanentError("bad request"))
    with pytest.raises(PermanentError):
        await retry_transient(fn, max_attempts=5, base_delay_s=0.001, max_delay_s=0.001)
    assert fn.calls == 1
    other = Flaky(1, ValueError("bug"))
    with pytest.raises(ValueError):
        await retry_transient(other, max_attempts=5, base_delay_s=0.001, max_delay_s=0.001)
    assert other.calls == 1


async def test_retry_after_is_a_floor_even_above_max_delay() -> None:
    fn = Flaky(1, TransientError("429", retry_after_s=0.05))
    waits: list[float] = []
    await retry_transient(
        fn,
        max_attempts=2,
        base_delay_s=0.001,
        max_delay_s=0.001,
        on_retry=lambda attempt, error, delay: waits.append(delay),
    )
    assert waits == [0.05]


async def test_deadline_stops_retrying_without_waiting() -> None:
    fn = Flaky(5, TransientError("429", retry_after_s=60))
    loop = asyncio.get_running_loop()
    with pytest.raises(TransientError):
        await retry_transient(
            fn, max_attempts=10, base_delay_s=0.001, max_delay_s=0.001, deadline=loop.time() + 5
        )
    assert fn.calls == 1


async def test_async_on_retry_is_awaited() -> None:
    seen: list[int] = []

    async def on_retry(attempt: int, error: TransientError, delay: float) -> None:
        seen.append(attempt)

    await retry_transient(
        Flaky(1), max_attempts=2, base_delay_s=0, max_delay_s=0, on_retry=on_retry
    )
    assert seen == [1]


def test_backoff_is_full_jitter_and_capped() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        delay = backoff_delay(attempt, base_delay_s=0.1, max_delay_s=2.0, rng=rng)
        assert 0 <= delay <= min(2.0, 0.1 * 2 ** (attempt - 1))
    draws = {backoff_delay(5, base_delay_s=0.1, max_delay_s=2.0, rng=rng) for _ in range(20)}
    assert len(draws) > 1


def test_zero_attempts_is_an_error() -> None:
    with pytest.raises(ValueError):
        asyncio.run(retry_transient(Flaky(0), max_attempts=0, base_delay_s=0, max_delay_s=0))


async def test_waits_are_backoff_delay_draws_from_the_given_rng() -> None:
    waits: list[float] = []
    await retry_transient(
        Flaky(3),
        max_attempts=4,
        base_delay_s=0.001,
        max_delay_s=0.004,
        on_retry=lambda attempt, error, delay: waits.append(delay),
        rng=random.Random(3),
    )
    rng = random.Random(3)
    expected = [
        backoff_delay(attempt, base_delay_s=0.001, max_delay_s=0.004, rng=rng)
        for attempt in (1, 2, 3)
    ]
    assert waits == expected


async def test_a_function_returning_an_awaitable_is_awaited() -> None:
    fn = Flaky(1)
    result = await retry_transient(lambda: fn(), max_attempts=2, base_delay_s=0, max_delay_s=0)
    assert result == "ok" and fn.calls == 2


async def test_stop_cuts_the_wait_short_and_no_attempt_follows() -> None:
    """A service that stops while a dependency is down stops now, not after the backoff."""
    stop = asyncio.Event()
    attempts = 0

    async def failing() -> None:
        nonlocal attempts
        attempts += 1
        raise TransientError("down")

    def on_retry(_attempt: int, _error: TransientError, _delay: float) -> None:
        stop.set()  # the service stops during the first wait (an hour long)

    with pytest.raises(RetryStopped):
        await asyncio.wait_for(
            retry_transient(
                failing,
                max_attempts=10,
                base_delay_s=3600.0,
                max_delay_s=3600.0,
                on_retry=on_retry,
                rng=random.Random(1),
                stop=stop,
            ),
            timeout=60,
        )
    assert attempts == 1


async def test_an_attempt_under_way_when_stop_is_set_runs_to_its_end() -> None:
    stop = asyncio.Event()

    async def slow_success() -> str:
        stop.set()
        await asyncio.sleep(0)
        return "written"

    assert (
        await retry_transient(
            slow_success, max_attempts=3, base_delay_s=0.0, max_delay_s=0.0, stop=stop
        )
        == "written"
    )


async def test_a_failed_attempt_after_stop_is_not_retried() -> None:
    stop = asyncio.Event()
    attempts = 0

    async def fails_after_stop() -> None:
        nonlocal attempts
        attempts += 1
        stop.set()
        raise TransientError("down")

    with pytest.raises(RetryStopped):
        await retry_transient(
            fails_after_stop, max_attempts=5, base_delay_s=0.0, max_delay_s=0.0, stop=stop
        )
    assert attempts == 1


async def test_stopped_before_the_first_attempt_tries_nothing() -> None:
    stop = asyncio.Event()
    stop.set()

    async def never() -> None:
        raise AssertionError("no attempt may start after stop")

    with pytest.raises(RetryStopped):
        await retry_transient(never, max_attempts=5, base_delay_s=0.0, max_delay_s=0.0, stop=stop)


def test_equal_jitter_and_no_jitter() -> None:
    rng = random.Random(3)
    for attempt in range(1, 8):
        cap = min(1.0, 0.1 * 2 ** (attempt - 1))
        equal = backoff_delay(attempt, base_delay_s=0.1, max_delay_s=1.0, rng=rng, jitter="equal")
        assert cap / 2 <= equal <= cap
        exact = backoff_delay(attempt, base_delay_s=0.1, max_delay_s=1.0, rng=rng, jitter="none")
        assert exact == cap
    assert backoff_delay(3, base_delay_s=0.0, max_delay_s=1.0, jitter="none") == 0.0
