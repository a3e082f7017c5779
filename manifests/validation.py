"""Checks across resources: duplicate names, references, graphs. Every problem at once.

A tool exists when a `Tool` manifest, a built-in of the runtime (`web-search`, `read-url`) or an
`McpServer`'s `tool_filter.include` names it; deny lists may name anything. Orloj's governance
targets (`AgentPolicy.target_systems`, `ToolPermission.tool_ref`/`target_agents`) are name
filters, as in Orloj: one naming what is not applied matches nothing,
so a governance folder validates on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from manifests._graph import analyse
from manifests._yaml import line_of
from manifests.builtins import BUILTIN_TOOLS, RESERVED_TOOL_NAMES
from manifests.errors import ManifestError, suggest
from manifests.models import (
    BEDROCK_KEYS,
    MEMORY_TOOLS,
    Agent,
    AgentPolicy,
    AgentRole,
    AgentSystem,
    McpServer,
    Memory,
    ModelEndpoint,
    Secret,
    Task,
    TaskSchedule,
    TaskWebhook,
    Tool,
    ToolPermission,
)
from manifests.task_checks import trigger_errors

EMBEDDING_PROVIDERS = frozenset({"openai", "openai-compatible", "mock"})
"""Endpoints whose `/embeddings` a Memory may use (`mock` embeds offline, deterministically)."""

if TYPE_CHECKING:
    from manifests.loader import Located


def check(
    resources: Sequence[Located], invalid: Iterable[tuple[str, str]] = ()
) -> list[ManifestError]:
    """Problems across `resources`. `invalid` lists (kind, name) of resources that exist but
    failed their own validation: references to them are not reported again."""
    errors: list[ManifestError] = []
    broken: dict[str, set[str]] = {}
    for kind_name, name in invalid:
        broken.setdefault(kind_name, set()).add(name)
    first: dict[str, Located] = {}
    unique: list[Located] = []
    for item in resources:
        key = item.resource.key
        if key in first:
            other = first[key]
            errors.append(
                item.error(
                    ("metadata", "name"),
                    f"defined twice; the first definition is at {other.source}",
                )
            )
            continue
        first[key] = item
        unique.append(item)

    def names(kind: type[object]) -> set[str]:
        return {i.resource.name for i in unique if isinstance(i.resource, kind)}

    def exists(what: str, name: str) -> bool:
        kind_name = {"agent": "Agent", "tool": "Tool"}.get(what, what)
        return name in broken.get(kind_name, set())

    agents, systems, roles = names(Agent), names(AgentSystem), names(AgentRole)
    endpoints = {
        i.resource.name: i.resource for i in unique if isinstance(i.resource, ModelEndpoint)
    }
    servers, memories = names(McpServer), names(Memory)
    tasks = names(Task)
    secrets = {i.resource.name: i.resource for i in unique if isinstance(i.resource, Secret)}
    tools = names(Tool) | set(BUILTIN_TOOLS) | set(MEMORY_TOOLS)
    for item in unique:
        if isinstance(item.resource, McpServer):
            tools |= set(item.resource.spec.tool_filter.include)

    def ref(
        item: Located, path: tuple[str | int, ...], what: str, name: str, known: set[str]
    ) -> None:
        if name not in known and not exists(what, name):
            errors.append(item.error(path, f"{what} {name!r} is not defined{suggest(name, known)}"))

    def secret_ref(item: Located, path: tuple[str | int, ...], name: str, key: str) -> None:
        """The Secret `name` is defined, and (when it is in this set) has the key `key`."""
        ref(item, path, "Secret", name, set(secrets))
        secret = secrets.get(name)
        keys = secret.spec.keys() if secret is not None else []
        if secret is not None and key not in keys:
            errors.append(
                item.error(
                    path,
                    f"Secret/{secret.name} has no key {key!r} (it has {', '.join(keys)})"
                    f"{suggest(key, keys)}",
                )
            )

    for item in unique:
        res = item.resource
        if isinstance(res, Agent):
            spec = res.spec
            if spec.model is not None:
                ref(
                    item,
                    ("spec", "model", "endpoint"),
                    "ModelEndpoint",
                    spec.model.endpoint,
                    set(endpoints),
                )
                endpoint = endpoints.get(spec.model.endpoint)
                if (
                    endpoint is not None
                    and spec.model.model is None
                    and not endpoint.spec.default_model
                ):
                    errors.append(
                        item.error(
                            ("spec", "model"),
                            f"no model name: set `model.model`, or `default_model` on "
                            f"ModelEndpoint/{endpoint.name}",
                        )
                    )
            else:
                assert spec.model_ref is not None
                ref(item, ("spec", "model_ref"), "ModelEndpoint", spec.model_ref, set(endpoints))
                endpoint = endpoints.get(spec.model_ref)
                if endpoint is not None and not endpoint.spec.default_model:
                    errors.append(
                        item.error(
                            ("spec", "model_ref"),
                            f"ModelEndpoint/{endpoint.name} has no `default_model`; add one, or "
                            "use `model: {endpoint, model}`",
                        )
                    )
            for i, fallback in enumerate(spec.fallback_model_refs):
                ref(
                    item,
                    ("spec", "fallback_model_refs", i),
                    "ModelEndpoint",
                    fallback,
                    set(endpoints),
                )
                endpoint = endpoints.get(fallback)
                if endpoint is not None and not endpoint.spec.default_model:
                    errors.append(
                        item.error(
                            ("spec", "fallback_model_refs", i),
                            f"ModelEndpoint/{fallback} has no `default_model` to fall back to",
                        )
                    )
            for i, tool in enumerate(spec.tools):
                if tool in RESERVED_TOOL_NAMES:
                    errors.append(
                        item.error(
                            ("spec", "tools", i),
                            f"tool name {tool!r} is reserved (supervisors get it from "
                            "`delegates_to`)",
                        )
                    )
                elif tool in MEMORY_TOOLS:
                    if spec.memory is None or tool not in spec.memory.tools:
                        errors.append(
                            item.error(
                                ("spec", "tools", i),
                                f"{tool} comes from `memory: {{ref: <Memory>, allow: "
                                f"[{tool.removeprefix('memory.')}]}}`, not from `tools`",
                            )
                        )
                else:
                    ref(item, ("spec", "tools", i), "tool", tool, tools)
            for i, role in enumerate(spec.roles):
                ref(item, ("spec", "roles", i), "AgentRole", role, roles)
            if spec.memory is not None:
                ref(item, ("spec", "memory", "ref"), "Memory", spec.memory.ref, memories)
        elif isinstance(res, AgentSystem):
            for i, agent in enumerate(res.spec.agents):
                ref(item, ("spec", "agents", i), "agent", agent, agents)
            graph = analyse(res.spec)
            for problem in graph.problems:
                errors.append(item.error(problem.path, problem.message))
        elif isinstance(res, AgentPolicy):
            spec_p = res.spec
            if spec_p.scope is not None and spec_p.scope.system is not None:
                ref(item, ("spec", "scope", "system"), "AgentSystem", spec_p.scope.system, systems)
            for i, agent in enumerate(spec_p.target_agents):
                ref(item, ("spec", "target_agents", i), "agent", agent, agents)
        elif isinstance(res, AgentRole):
            for i, agent in enumerate(res.spec.agents):
                ref(item, ("spec", "agents", i), "agent", agent, agents)
            for i, tool in enumerate(res.spec.tools):
                ref(item, ("spec", "permissions", "tools", i), "tool", tool, tools)
        elif isinstance(res, ToolPermission):
            if res.spec.tool is not None:
                ref(item, ("spec", "tool"), "tool", res.spec.tool, tools)
            for field in ("allowed_agents", "denied_agents"):
                for i, agent in enumerate(getattr(res.spec, field)):
                    ref(item, ("spec", field, i), "agent", agent, agents)
        elif isinstance(res, Tool):
            if res.name in RESERVED_TOOL_NAMES:
                errors.append(
                    item.error(("metadata", "name"), f"tool name {res.name!r} is reserved")
                )
            if res.spec.mcp_server is not None:
                ref(item, ("spec", "mcp_server"), "McpServer", res.spec.mcp_server, servers)
            tool_auth = res.spec.auth
            if tool_auth is not None:
                path = ("spec", "auth", "secretRef")
                if tool_auth.secret_name in secrets:
                    for secret_key in tool_auth.secret_keys:  # oauth2 reads two keys
                        secret_ref(item, path, tool_auth.secret_name, secret_key)
                else:
                    ref(item, path, "Secret", tool_auth.secret_name, set(secrets))
        elif isinstance(res, ModelEndpoint) and res.spec.auth is not None:
            endpoint_auth = res.spec.auth
            # bedrock reads the AWS keys of its Secret, the others its one key
            keys = BEDROCK_KEYS if res.spec.provider == "bedrock" else [endpoint_auth.secret_key]
            for key in keys:
                secret_ref(item, ("spec", "auth", "secretRef"), endpoint_auth.secret_name, key)
                if endpoint_auth.secret_name not in secrets:
                    break  # reported once
        elif isinstance(res, Memory):
            errors.extend(_memory_problems(item, res, endpoints, ref, secret_ref))
        elif isinstance(res, Task):
            ref(item, ("spec", "system"), "AgentSystem", res.spec.system, systems)
        elif isinstance(res, TaskSchedule | TaskWebhook):
            ref(item, ("spec", "task_ref"), "Task", res.spec.task_name, tasks)
            if isinstance(res, TaskWebhook):
                hook_auth = res.spec.auth
                secret_ref(
                    item,
                    ("spec", "auth", "secret_ref"),
                    hook_auth.secret_name,
                    hook_auth.secret_key,
                )
    errors += trigger_errors(unique)
    return errors


def _memory_problems(
    item: Located,
    res: Memory,
    endpoints: dict[str, ModelEndpoint],
    ref: Callable[[Located, tuple[str | int, ...], str, str, set[str]], None],
    secret_ref: Callable[[Located, tuple[str | int, ...], str, str], None],
) -> list[ManifestError]:
    """A Memory's `embedding_model` names an endpoint that can embed; its Secret exists."""
    out: list[ManifestError] = []
    spec = res.spec
    name = spec.embedding_endpoint
    if name is not None:
        path: tuple[str | int, ...] = ("spec", "embedding_model")
        ref(item, path, "ModelEndpoint", name, set(endpoints))
        endpoint = endpoints.get(name)
        if endpoint is not None and endpoint.spec.provider not in EMBEDDING_PROVIDERS:
            out.append(
                item.error(
                    path,
                    f"ModelEndpoint/{name} is provider {endpoint.spec.provider}, which has no "
                    f"embeddings API (use one of {', '.join(sorted(EMBEDDING_PROVIDERS))})",
                )
            )
        elif endpoint is not None and not endpoint.spec.default_model:
            out.append(
                item.error(path, f"ModelEndpoint/{name} has no `default_model` to embed with")
            )
    if spec.auth is not None:
        secret_ref(item, ("spec", "auth", "secretRef"), spec.auth.secret_name, spec.auth.secret_key)
    return out


def line_for(item: Located, path: tuple[str | int, ...]) -> int | None:
    if item.node is None:
        return item.line
    return line_of(item.node, path, item.line)
