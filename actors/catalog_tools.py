"""The tools of the current catalog, for the agent loop (`ToolBox`): the registry's, and the
built-in memory tools (`actors.memory`), whose stores outlive a catalog."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.memory.stores import MemoryStores
from actors.memory.tools import MemoryTools, is_memory_tool
from actors.ports import CatalogSource
from actors.providers.base import ToolSpec
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.credentials import OAuth2Tokens
from actors.tools.options import ToolOptions
from actors.tools.registry import ToolRegistry
from actors.tools.sandbox import PythonSandbox
from manifests.catalog import Catalog


class CatalogTools:
    """The tool registry of the current catalog, rebuilt when the catalog object changes.

    A registry holds HTTP clients: the one a new catalog replaces is closed as soon as no
    invocation runs on it any more, and `aclose` closes the rest."""

    def __init__(
        self,
        source: CatalogSource,
        *,
        python: PythonSandbox | None = None,
        sealing_key: X25519PrivateKey | None = None,
        memory: MemoryStores | None = None,
        options: ToolOptions | None = None,
    ) -> None:
        self._source = source
        self._memory = MemoryTools(memory or MemoryStores())
        self._options = options
        self._python = python
        self._sealing_key = sealing_key
        self._tokens = OAuth2Tokens()
        """OAuth2 tokens outlive a registry: a new catalog does not exchange them again."""
        self._catalog: Catalog | None = None
        self._registry: ToolRegistry | None = None
        self._running: dict[int, int] = {}
        """Invocations in flight per registry (by id)."""
        self._retired: dict[int, ToolRegistry] = {}

    def _current(self) -> ToolRegistry:
        catalog = self._source.catalog
        if self._registry is None or catalog is not self._catalog:
            if self._registry is not None:
                self._retired[id(self._registry)] = self._registry
            self._catalog = catalog
            self._registry = ToolRegistry.from_catalog(
                catalog,
                python=self._python,
                sealing_key=self._sealing_key,
                tokens=self._tokens,
                options=self._options,
            )
        return self._registry

    async def _close_idle(self) -> None:
        for key in [key for key in self._retired if not self._running.get(key)]:
            await self._retired.pop(key).aclose()

    def spec_for(self, name: str) -> ToolSpec:
        if is_memory_tool(name):
            return self._memory.spec_for(name)
        return self._current().spec_for(name)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        if is_memory_tool(invocation.tool):
            return await self._memory.invoke(self._source.catalog, invocation)
        registry = self._current()
        key = id(registry)
        self._running[key] = self._running.get(key, 0) + 1
        try:
            await self._close_idle()
            return await registry.invoke(invocation)
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
            await self._close_idle()

    async def aclose(self) -> None:
        """Close every registry; the next call builds a new one."""
        if self._registry is not None:
            self._retired[id(self._registry)] = self._registry
        self._registry = None
        self._catalog = None
        self._running.clear()
        for key in list(self._retired):
            await self._retired.pop(key).aclose()
        await self._memory.aclose()
