"""Functions used as `type: python` tools by the actor tests."""

from __future__ import annotations

import asyncio


def broken(query: str) -> str:
    raise RuntimeError(f"the search index is corrupt (query {query!r})")


async def stall(query: str) -> str:
    await asyncio.sleep(30)
    return "too late"


CALLS: list[str] = []


def lookup(query: str) -> str:
    CALLS.append(query)
    return f"3 rows for {query}"
