"""The seams of the actor runtime: what an actor needs from the policy service, the tools, the
usage events and the catalog, as Protocols (the production classes and test doubles fit them)."""

from __future__ import annotations

from typing import Any, Protocol

from actors.providers.base import ToolSpec
from actors.tools.base import ToolInvocation, ToolResult
from manifests.catalog import Catalog
from topics.messages import Action, Decision, Payload, Step


class Gate(Protocol):
    """The policy service's client (`policy_service.client.Authorizer`)."""

    async def authorize(
        self,
        *,
        task_id: str,
        system: str,
        agent: str,
        step_id: str,
        action: Action,
        model: str | None = None,
        endpoint: str | None = None,
        tool: str | None = None,
        arguments: dict[str, Any] | None = None,
        estimated_tokens: int = 0,
        step_number: int = 0,
        call_index: int = 0,
        approval_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Decision: ...


class ToolBox(Protocol):
    """The tools an agent may be offered and run (`actors.tools.ToolRegistry`)."""

    def spec_for(self, name: str) -> ToolSpec: ...

    async def invoke(self, invocation: ToolInvocation) -> ToolResult: ...


class UsageSink(Protocol):
    """Where call-time usage events go (a non-transactional, idempotent producer)."""

    async def emit(self, step: Step, payload: Payload, *, agent: str) -> None: ...


class CatalogSource(Protocol):
    """Where the current catalog comes from (`manifests.watcher.CatalogWatcher`)."""

    @property
    def catalog(self) -> Catalog: ...
