"""Functions used as `type: python` tools by the actor tests."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path


def broken(query: str) -> str:
    raise RuntimeError(f"the search index is corrupt (query {query!r})")


async def stall(query: str) -> str:
    await asyncio.sleep(30)
    return "too late"


def _calls_file(actor_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"podium-test-lookup-{actor_pid}"


def lookup(query: str) -> str:
    """Records the call in a file of the actor's process (each call runs in a child of it)."""
    with _calls_file(os.getppid()).open("a") as file:
        file.write(query + "\n")
    return f"3 rows for {query}"


def calls() -> list[str]:
    """The queries `lookup` ran for actors of this (the test's) process."""
    path = _calls_file(os.getpid())
    return path.read_text().splitlines() if path.exists() else []


def clear_calls() -> None:
    _calls_file(os.getpid()).unlink(missing_ok=True)
