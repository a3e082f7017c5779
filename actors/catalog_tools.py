"""The tools of the current catalog, for the agent loop (`ToolBox`)."""

from __future__ import annotations

from actors.ports import CatalogSource
from actors.providers.base import ToolSpec
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.registry import ToolRegistry
from actors.tools.sandbox import PythonSandbox
from manifests.catalog import Catalog


class CatalogTools:
    """The tool registry of the current catalog, rebuilt when the catalog object changes."""

    def __init__(self, source: CatalogSource, *, python: PythonSandbox | None = None) -> None:
        self._source = source
        self._python = python
        self._catalog: Catalog | None = None
        self._registry: ToolRegistry | None = None

    def _current(self) -> ToolRegistry:
        catalog = self._source.catalog
        if self._registry is None or catalog is not self._catalog:
            self._catalog = catalog
            self._registry = ToolRegistry.from_catalog(catalog, python=self._python)
        return self._registry

    def spec_for(self, name: str) -> ToolSpec:
        return self._current().spec_for(name)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        return await self._current().invoke(invocation)
