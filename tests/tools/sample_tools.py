"""Functions used as `type: python` tools by the tests."""

from __future__ import annotations

import asyncio
import os
import time
from os import getcwd as getcwd  # defined elsewhere: not a tool of this module

from podium.core.errors import TransientError


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


def flaky(counter: str) -> str:
    """Fails twice, then succeeds; the count lives in a file (every call is its own process)."""
    with open(counter, "a+") as file:
        file.write("x")
        file.seek(0)
        calls = len(file.read())
    if calls < 3:
        raise TransientError("try again")
    return f"ok after {calls}"


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "rested"


def pid() -> int:
    return os.getpid()


def environment() -> list[str]:
    return sorted(os.environ)


def sleeper(pid_file: str) -> str:
    with open(pid_file, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)
    return "woke up"


def hog(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def burn() -> int:
    count = 0
    while True:
        count += 1


def chatty() -> str:
    print("noise on stdout")
    return "quiet result"


def big(chars: int) -> str:
    return "é" * chars
