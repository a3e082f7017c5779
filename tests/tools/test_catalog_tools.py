"""`CatalogTools` closes the registries (and their HTTP clients) it replaces and owns."""

from __future__ import annotations

import asyncio

import pytest

import actors.catalog_tools as catalog_tools
from actors.catalog_tools import CatalogTools
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.registry import ToolRegistry
from manifests.catalog import Catalog


class Source:
    def __init__(self) -> None:
        self.catalog = Catalog.empty()


class Recorded(ToolRegistry):
    made: list[Recorded] = []
    gate: asyncio.Event | None = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.closed = False
        Recorded.made.append(self)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        if Recorded.gate is not None:
            await Recorded.gate.wait()
        return await super().invoke(invocation)

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> type[Recorded]:
    Recorded.made = []
    Recorded.gate = None
    monkeypatch.setattr(catalog_tools, "ToolRegistry", Recorded)
    return Recorded


def call() -> ToolInvocation:
    return ToolInvocation(tool="nope", arguments={}, idempotency_key="t/s/0", timeout_s=5.0)


async def test_a_replaced_registry_is_closed_and_the_last_one_on_aclose(
    recorded: type[Recorded],
) -> None:
    source = Source()
    tools = CatalogTools(source)
    assert not (await tools.invoke(call())).ok
    source.catalog = Catalog.empty()
    tools.spec_for("read-url")
    first, second = recorded.made
    assert not first.closed and not second.closed
    await tools.invoke(call())
    assert first.closed and not second.closed
    await tools.aclose()
    assert second.closed


async def test_a_registry_in_use_is_closed_when_its_last_call_ends(
    recorded: type[Recorded],
) -> None:
    source = Source()
    tools = CatalogTools(source)
    recorded.gate = asyncio.Event()
    running = asyncio.create_task(tools.invoke(call()))
    await asyncio.sleep(0)  # the call starts and waits on the gate
    assert len(recorded.made) == 1
    source.catalog = Catalog.empty()
    tools.spec_for("read-url")
    first = recorded.made[0]
    await asyncio.sleep(0)
    assert not first.closed
    recorded.gate.set()
    await running
    assert first.closed
    await tools.aclose()
    assert all(registry.closed for registry in recorded.made)
