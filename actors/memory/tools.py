"""`MemoryTools`: the built-in memory tools (`memory.read|write|search|list|ingest`) of the
agent that calls them, on the store of the Memory its `memory.ref` names. An agent gets only the
operations its `memory.allow` grants; the policy service has authorized the call before this
runs (`actors.tool_calls`), and its `tool.called` is written as for any tool. Results are
Orloj's JSON; a store's failure is a `ToolResult(ok=False)` that the model is told of."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from actors.memory.base import DEFAULT_TOP_K, MemoryEntry, MemoryStore
from actors.memory.schemas import DEFAULT_CHUNK_SIZE, DEFAULT_OVERLAP, TOOLS, chunks
from actors.memory.stores import MemoryStores
from actors.providers.base import ToolSpec
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.schema import ArgumentValidator
from manifests.catalog import Catalog
from manifests.models import MEMORY_TOOLS
from podium.core.errors import PermanentError, TransientError

LIST_LIMIT = 100
"""Entries `memory.list` returns at most (Orloj sets none; a model's context is finite)."""


def is_memory_tool(name: str) -> bool:
    return name in MEMORY_TOOLS


class MemoryTools:
    def __init__(self, stores: MemoryStores) -> None:
        self._stores = stores
        self._validators = {name: ArgumentValidator(name, s) for name, (_, s) in TOOLS.items()}

    def spec_for(self, name: str) -> ToolSpec:
        description = TOOLS[name][0]
        return ToolSpec(
            name=name, description=description, parameters=self._validators[name].schema
        )

    async def invoke(self, catalog: Catalog, invocation: ToolInvocation) -> ToolResult:
        name, agent = invocation.tool, invocation.agent
        spec = catalog.agents[agent].spec if agent in catalog.agents else None
        memory = catalog.memory_of(agent)
        if spec is None or spec.memory is None or name not in spec.memory.tools:
            return _failed(f"{name} is not available to {agent or 'this agent'}")
        if memory is None:
            return _failed(f"Memory/{spec.memory.ref} is not applied")
        problems = self._validators[name].problems(invocation.arguments)
        if problems:
            return ToolResult(
                ok=False,
                content=f"invalid arguments for tool {name}: " + "; ".join(problems),
                error="schema: " + "; ".join(problems),
            )
        try:
            store = self._stores.store_for(catalog, memory)
            async with asyncio.timeout(invocation.timeout_s):
                result = await _run(store, invocation)
        except TimeoutError:
            return _failed(f"{name}: no answer within {invocation.timeout_s:.1f}s")
        except TransientError as exc:
            return ToolResult(
                ok=False, content=f"error: memory {memory.name} is unavailable", error=str(exc)
            )
        except PermanentError as exc:
            return _failed(str(exc))
        return ToolResult(ok=True, content=json.dumps(result, ensure_ascii=False))

    async def aclose(self) -> None:
        await self._stores.aclose()


def _failed(reason: str) -> ToolResult:
    return ToolResult(ok=False, content=f"error: {reason}", error=reason)


def _metadata(invocation: ToolInvocation, given: dict[str, str] | None) -> dict[str, Any]:
    """What the model gave, and who wrote the entry (the agent and its call's idempotency key,
    `task/step/index`)."""
    return {**(given or {}), "agent": invocation.agent, "call": invocation.idempotency_key}


async def _run(store: MemoryStore, invocation: ToolInvocation) -> dict[str, Any]:
    args = invocation.arguments
    op = invocation.tool.removeprefix("memory.")
    for field in ("key", "query", "source"):
        if field in args and not str(args[field]).strip():
            raise PermanentError(f"{invocation.tool}: {field} is required")
    if op == "write":
        key = args["key"].strip()
        await store.put(key, args["value"], _metadata(invocation, args.get("metadata")))
        return {"status": "ok", "key": key}
    if op == "read":
        key = args["key"].strip()
        entry = await store.get(key)
        if entry is None:
            return {"found": False, "key": key}
        return {"found": True, "key": key, "value": entry.value}
    if op == "search":
        found = await store.search(args["query"].strip(), int(args.get("top_k") or DEFAULT_TOP_K))
        return {"results": _shown(found), "count": len(found)}
    if op == "list":
        listed = await store.list(str(args.get("prefix") or ""), LIST_LIMIT)
        return {"entries": _shown(listed), "count": len(listed)}
    source = args["source"].strip()
    pieces = chunks(
        args["content"],
        int(args.get("chunk_size") or DEFAULT_CHUNK_SIZE),
        int(args["overlap"]) if "overlap" in args else DEFAULT_OVERLAP,
    )
    for index, piece in enumerate(pieces):
        await store.put(
            f"{source}/chunk-{index:04d}", piece, _metadata(invocation, {"source": source})
        )
    return {"status": "ok", "source": source, "chunks_stored": len(pieces)}


def _shown(entries: list[MemoryEntry]) -> list[dict[str, Any]]:
    return [e.for_model() for e in entries]
