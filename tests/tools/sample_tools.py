"""Functions used as `type: python` tools by the tests."""

from __future__ import annotations

import asyncio
import time

from podium.core.errors import TransientError

CALLS: dict[str, int] = {}


def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def shout(text: str) -> str:
    await asyncio.sleep(0)
    return text.upper()


def boom(password: str) -> str:
    raise RuntimeError(f"database rejected password {password}")


def slow() -> str:
    time.sleep(0.5)
    return "late"


def flaky(label: str) -> str:
    CALLS[label] = CALLS.get(label, 0) + 1
    if CALLS[label] < 3:
        raise TransientError("try again")
    return f"ok after {CALLS[label]}"


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "rested"
