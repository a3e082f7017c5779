"""`Catalog`: an immutable snapshot of a valid, consistent set of resources, with the compiled
routing tables and the lookups services need (which model an agent calls, which policies apply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from manifests.compile import compile_all
from manifests.models import (
    Agent,
    AgentPolicy,
    AgentRole,
    AgentSystem,
    McpServer,
    Memory,
    ModelEndpoint,
    Resource,
    Secret,
    Task,
    TaskSchedule,
    TaskWebhook,
    Tool,
    ToolPermission,
    Worker,
)
from topics.names import TopicNames
from topics.routing import RoutingTable

R = TypeVar("R")


def _by_name(resources: Iterable[Resource], kind: type[R]) -> Mapping[str, R]:
    found = {r.name: r for r in resources if isinstance(r, kind)}
    return MappingProxyType(dict(sorted(found.items())))


@dataclass(frozen=True, slots=True)
class Catalog:
    agents: Mapping[str, Agent]
    systems: Mapping[str, AgentSystem]
    endpoints: Mapping[str, ModelEndpoint]
    tools: Mapping[str, Tool]
    policies: Mapping[str, AgentPolicy]
    roles: Mapping[str, AgentRole]
    tool_permissions: Mapping[str, ToolPermission]
    mcp_servers: Mapping[str, McpServer]
    memories: Mapping[str, Memory]
    tasks: Mapping[str, Task]
    schedules: Mapping[str, TaskSchedule]
    secrets: Mapping[str, Secret]
    webhooks: Mapping[str, TaskWebhook]
    workers: Mapping[str, Worker]
    routing: Mapping[str, RoutingTable]
    names: TopicNames

    @classmethod
    def build(cls, resources: Iterable[Resource], names: TopicNames | None = None) -> Catalog:
        """Assumes the resources passed validation (see `manifests.loader.build`)."""
        items = list(resources)
        names = names or TopicNames()
        systems = _by_name(items, AgentSystem)
        return cls(
            agents=_by_name(items, Agent),
            systems=systems,
            endpoints=_by_name(items, ModelEndpoint),
            tools=_by_name(items, Tool),
            policies=_by_name(items, AgentPolicy),
            roles=_by_name(items, AgentRole),
            tool_permissions=_by_name(items, ToolPermission),
            mcp_servers=_by_name(items, McpServer),
            memories=_by_name(items, Memory),
            tasks=_by_name(items, Task),
            schedules=_by_name(items, TaskSchedule),
            secrets=_by_name(items, Secret),
            webhooks=_by_name(items, TaskWebhook),
            workers=_by_name(items, Worker),
            routing=MappingProxyType(compile_all(systems.values(), names)),
            names=names,
        )

    @classmethod
    def empty(cls, names: TopicNames | None = None) -> Catalog:
        return cls.build([], names)

    def resources(self) -> list[Resource]:
        """Every resource, in a stable order (kind, then name)."""
        out: list[Resource] = []
        for mapping in (
            self.endpoints,
            self.tools,
            self.mcp_servers,
            self.memories,
            self.agents,
            self.systems,
            self.policies,
            self.roles,
            self.tool_permissions,
            self.tasks,
            self.schedules,
            self.secrets,
            self.webhooks,
            self.workers,
        ):
            out.extend(mapping.values())
        return out

    # --- lookups ---------------------------------------------------------------------------------

    def agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            raise KeyError(f"agent {name!r} is not applied") from None

    def model_for(self, agent_name: str) -> tuple[ModelEndpoint, str]:
        """The endpoint and model name an agent calls (`model: {endpoint, model}`, or `model_ref`
        with the endpoint's `default_model`)."""
        spec = self.agent(agent_name).spec
        endpoint = self.endpoints[spec.endpoint_name]
        model = spec.model.model if spec.model is not None else None
        model = model or endpoint.spec.default_model
        if model is None:  # prevented by validation
            raise KeyError(f"agent {agent_name!r} has no model name")
        return endpoint, model

    def fallbacks_for(self, agent_name: str) -> list[tuple[ModelEndpoint, str]]:
        """The fallbacks of `fallback_model_refs`, in order (endpoint, its `default_model`)."""
        out: list[tuple[ModelEndpoint, str]] = []
        for ref in self.agent(agent_name).spec.fallback_model_refs:
            endpoint = self.endpoints[ref]
            if endpoint.spec.default_model:
                out.append((endpoint, endpoint.spec.default_model))
        return out

    def secret_for(self, endpoint: ModelEndpoint) -> Secret | None:
        """The Secret an endpoint's `auth.secretRef` names (None when it names none, or when
        that secret is not applied)."""
        auth = endpoint.spec.auth
        return self.secrets.get(auth.secret_name) if auth is not None else None

    def secret_for_tool(self, tool: Tool) -> Secret | None:
        """The Secret a tool's `auth.secretRef` names (None when it names none, or when that
        secret is not applied)."""
        auth = tool.spec.auth
        return self.secrets.get(auth.secret_name) if auth is not None else None

    def memory_of(self, agent_name: str) -> Memory | None:
        """The Memory an agent's `memory.ref` names (None: none, or not applied)."""
        agent = self.agents.get(agent_name)
        if agent is None or agent.spec.memory is None:
            return None
        return self.memories.get(agent.spec.memory.ref)

    def policies_for(self, system: str, agent: str) -> list[AgentPolicy]:
        return [p for p in self.policies.values() if p.applies_to(system, agent)]

    def roles_of(self, agent: str) -> list[AgentRole]:
        """Roles naming the agent (`AgentRole.spec.agents`) or named by it (`Agent.spec.roles`)."""
        named = set(self.agents[agent].spec.roles) if agent in self.agents else set()
        return [r for r in self.roles.values() if agent in r.spec.agents or r.name in named]

    def agents_in_systems(self) -> list[str]:
        return sorted({a for s in self.systems.values() for a in s.spec.agents} | set(self.agents))


def required_topics(names: TopicNames, agents: Iterable[str]) -> list[str]:
    topics = set(names.core_topics()) | {names.manifests}
    for agent in agents:
        topics |= {names.agent(agent), names.agent_dlq(agent), names.agent_joins(agent)}
    return sorted(topics)
