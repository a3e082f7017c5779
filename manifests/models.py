"""The resource kinds of a manifest, as pydantic models (Orloj `orloj.dev/v1`, plus extensions).

Both spellings the seeds use are read (`model` and `model_ref`, `next` and `edges`,
`max_tokens_per_task` and `max_tokens_per_run`, `denied_tools` and `blocked_tools`, `scope.system`
and `target_systems`); the models expose one normalised view so that consumers never deal with
spellings. Unknown fields are errors (`extra="forbid"`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from manifests.builtins import BUILTIN_TOOLS

API_VERSIONS = ("orloj.dev/v1", "podium.dev/v1")
"""The `apiVersion`s accepted; Orloj's is read as it is."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
"""A resource name: usable in a topic name (`podium.agent.<name>`)."""

DEFAULT_MAX_STEPS = 8
DEFAULT_TIMEOUT_S = 120.0

Name = Annotated[str, Field(pattern=NAME_PATTERN)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> object:
    """`"60s"`, `"2m"`, `"1.5h"`, `"250ms"` or a number of seconds -> seconds (float).

    Anything else is returned unchanged so that the field's own type check reports it.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration; write it like 30s, 2m, 1h or 250ms")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


Seconds = Annotated[float, Field(gt=0, le=7 * 86400)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        allow_inf_nan=False,
        str_strip_whitespace=False,
    )


class Metadata(_Model):
    name: Name
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ResourceBase(_Model):
    kind_name: ClassVar[str] = ""

    api_version: Literal["orloj.dev/v1", "podium.dev/v1"] = Field(alias="apiVersion")
    metadata: Metadata

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def key(self) -> str:
        """`Kind/name`: the key on the manifests topic."""
        return f"{self.kind_name}/{self.metadata.name}"


# --- Agent ---------------------------------------------------------------------------------------


class ModelSelector(_Model):
    """`model: {endpoint, model}`: which ModelEndpoint, and which model on it."""

    endpoint: Name
    model: str | None = Field(default=None, min_length=1)


class AgentLimits(_Model):
    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=1, le=1000)
    timeout_s: Seconds = Field(default=DEFAULT_TIMEOUT_S, alias="timeout")

    _timeout = field_validator("timeout_s", mode="before")(parse_duration)


class AgentSpec(_Model):
    description: str = ""
    prompt: str = ""
    model: ModelSelector | None = None
    model_ref: Name | None = None
    fallback_model_refs: list[Name] = []
    tools: list[str] = []
    roles: list[Name] = []
    limits: AgentLimits = AgentLimits()

    @field_validator("tools", mode="before")
    @classmethod
    def _no_tools(cls, value: object) -> object:
        """`tools: [none]` (and `tools: none`, `tools: null`) mean no tools."""
        if value is None or value == "none":
            return []
        if isinstance(value, list) and value == ["none"]:
            return []
        return value

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name == "none":
                raise ValueError("'none' means no tools and cannot be listed with other tools")
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"tool name {name!r} is not a valid name")
        return value

    @model_validator(mode="after")
    def _one_model(self) -> AgentSpec:
        if self.model is None and self.model_ref is None:
            raise ValueError(
                "the agent has no model: add `model: {endpoint: <ModelEndpoint>, model: <name>}` "
                "or `model_ref: <ModelEndpoint>`"
            )
        if self.model is not None and self.model_ref is not None:
            raise ValueError("set either `model` or `model_ref`, not both")
        return self

    @property
    def endpoint_name(self) -> str:
        """The ModelEndpoint this agent calls (from `model.endpoint` or `model_ref`)."""
        if self.model is not None:
            return self.model.endpoint
        assert self.model_ref is not None
        return self.model_ref


class Agent(ResourceBase):
    kind_name: ClassVar[str] = "Agent"
    kind: Literal["Agent"]
    spec: AgentSpec


# --- AgentSystem ---------------------------------------------------------------------------------


class GraphEdge(_Model):
    """`edges: [{to: b, when: approved}]`; an edge without `when` is the default."""

    to: Name
    when: str | None = Field(default=None, min_length=1)
    labels: dict[str, str] = {}


class JoinSpec(_Model):
    """`join: {mode: wait_for_all}` on a node marks it as the join of its incoming edges."""

    mode: Literal["wait_for_all"] = "wait_for_all"


class GraphNode(_Model):
    next: Name | None = None
    edges: list[GraphEdge] = []
    fan_out: list[Name] = []
    join: Name | JoinSpec | bool | None = None
    delegates_to: list[Name] = []
    exit_when: str | None = Field(default=None, min_length=1)
    max_iterations: int | None = Field(default=None, ge=1, le=10000)

    @property
    def join_target(self) -> str | None:
        """`join: e` on a fan-out node: the agent that joins the branches."""
        return self.join if isinstance(self.join, str) else None

    @property
    def is_join(self) -> bool:
        """`join: {mode: wait_for_all}` or `join: true`: this node joins its incoming edges."""
        return isinstance(self.join, JoinSpec) or self.join is True


class AgentSystemSpec(_Model):
    agents: list[Name] = Field(min_length=1)
    graph: dict[Name, GraphNode] = {}

    @field_validator("graph", mode="before")
    @classmethod
    def _empty_nodes(cls, value: object) -> object:
        """`graph: {writer: }` (a node without edges) is an empty node."""
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


class AgentSystem(ResourceBase):
    kind_name: ClassVar[str] = "AgentSystem"
    kind: Literal["AgentSystem"]
    spec: AgentSystemSpec


# --- ModelEndpoint -------------------------------------------------------------------------------


class Pricing(_Model):
    """USD per million tokens; overrides the pricing package (self-hosted or demo models)."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(default=None, ge=0)


def _nested_problems(prefix: str, exc: ValidationError) -> str:
    """A nested model's errors as one message whose paths start at `prefix`."""
    problems = []
    for error in exc.errors():
        path = ".".join([prefix, *(str(part) for part in error["loc"])])
        if error["type"] == "extra_forbidden":
            problems.append(f"{path}: unknown field")
        else:
            problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)


class MockToolCall(_Model):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = {}


class MockReply(_Model):
    """One scripted reply of the `mock` provider; a plain string is short for `{content: ...}`."""

    content: str = ""
    tool_calls: list[MockToolCall] = []
    outcome: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_shorthand(cls, value: object) -> object:
        return {"content": value} if isinstance(value, str) else value


class MockOptions(_Model):
    """`options` of a `mock` endpoint: per agent, replies in order; after the last, the last
    repeats (reply n answers the agent's n-th model call of the task)."""

    script: dict[str, Annotated[list[MockReply], Field(min_length=1)]] = {}


class ModelEndpointSpec(_Model):
    provider: Literal["openai", "anthropic", "openai-compatible", "mock"]
    base_url: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    default_model: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = {}
    pricing: Pricing | None = None

    @model_validator(mode="after")
    def _by_provider(self) -> ModelEndpointSpec:
        if self.provider == "openai-compatible" and not self.base_url:
            raise ValueError("provider openai-compatible needs `base_url`")
        if self.provider == "mock":
            try:
                self.mock_options()
            except ValidationError as exc:
                raise ValueError(_nested_problems("options", exc)) from None
        return self

    def mock_options(self) -> MockOptions:
        """The options of a `mock` endpoint, checked (pydantic names the bad path)."""
        return MockOptions.model_validate(self.options)


class ModelEndpoint(ResourceBase):
    kind_name: ClassVar[str] = "ModelEndpoint"
    kind: Literal["ModelEndpoint"]
    spec: ModelEndpointSpec


# --- Tool ----------------------------------------------------------------------------------------


class RetryPolicy(_Model):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Seconds = 0.5

    _backoff = field_validator("backoff", mode="before")(parse_duration)


class ToolRuntime(_Model):
    timeout_s: Seconds = Field(default=30.0, alias="timeout")
    retry: RetryPolicy = RetryPolicy()

    _timeout = field_validator("timeout_s", mode="before")(parse_duration)


class ToolSpec(_Model):
    type: Literal["http", "python", "mcp"] = "http"
    endpoint: str | None = Field(default=None, min_length=1)
    description: str = ""
    input_schema: dict[str, Any] = {"type": "object"}
    runtime: ToolRuntime = ToolRuntime()
    risk_level: Literal["low", "medium", "high", "critical"] = "low"
    allow_private_networks: bool = False
    mcp_server: Name | None = None

    @model_validator(mode="after")
    def _by_type(self) -> ToolSpec:
        # An http tool without an endpoint is allowed here only to configure a built-in
        # (`read-url`, `web-search`); `Tool` checks the name, which the spec does not know.
        if self.type == "http":
            if self.endpoint is not None and not re.match(r"^https?://", self.endpoint):
                raise ValueError("a tool of type http needs `endpoint: http(s)://...`")
        elif self.type == "python":
            if not self.endpoint or not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", self.endpoint):
                raise ValueError("a tool of type python needs `endpoint: module:function`")
        elif self.mcp_server is None:
            raise ValueError("a tool of type mcp needs `mcp_server: <McpServer>`")
        return self


class Tool(ResourceBase):
    """A tool. One named like a built-in without an `endpoint` configures the built-in (for
    example `allow_private_networks` for `read-url`); with an `endpoint` it replaces it."""

    kind_name: ClassVar[str] = "Tool"
    kind: Literal["Tool"]
    spec: ToolSpec

    @model_validator(mode="after")
    def _endpoint_unless_builtin(self) -> Tool:
        if (
            self.spec.type == "http"
            and self.spec.endpoint is None
            and self.metadata.name not in BUILTIN_TOOLS
        ):
            raise ValueError(
                "a tool of type http needs `endpoint: http(s)://...` "
                f"(only the built-ins {', '.join(sorted(BUILTIN_TOOLS))} may omit it)"
            )
        return self


# --- McpServer -----------------------------------------------------------------------------------


class McpEnv(_Model):
    """An environment variable of the server: a `value`, or a `secretRef` (optionally mounted)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = None
    secret_ref: str | None = Field(default=None, alias="secretRef")
    mount_path: str | None = Field(default=None, alias="mountPath")

    @model_validator(mode="after")
    def _one_source(self) -> McpEnv:
        if (self.value is None) == (self.secret_ref is None):
            raise ValueError(f"env {self.name}: set exactly one of `value` or `secretRef`")
        return self


class ToolFilter(_Model):
    include: list[str] = []
    exclude: list[str] = []


class McpServerSpec(_Model):
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: list[str] = []
    image: str | None = None
    endpoint: str | None = None
    env: list[McpEnv] = []
    idle_timeout_s: Seconds | None = Field(default=None, alias="idle_timeout")
    tool_filter: ToolFilter = ToolFilter()

    _idle = field_validator("idle_timeout_s", mode="before")(parse_duration)

    @field_validator("tool_filter", mode="before")
    @classmethod
    def _filter_list(cls, value: object) -> object:
        """`tool_filter: [a, b]` is short for `tool_filter: {include: [a, b]}`."""
        if isinstance(value, list):
            return {"include": value}
        return value

    @model_validator(mode="after")
    def _by_transport(self) -> McpServerSpec:
        if self.transport == "stdio" and not (self.command or self.image):
            raise ValueError("a stdio McpServer needs `command` or `image`")
        if self.transport == "http" and not self.endpoint:
            raise ValueError("an http McpServer needs `endpoint`")
        return self


class McpServer(ResourceBase):
    kind_name: ClassVar[str] = "McpServer"
    kind: Literal["McpServer"]
    spec: McpServerSpec


# --- Governance ----------------------------------------------------------------------------------


class PolicyScope(_Model):
    system: Name | None = None
    agents: list[Name] = []


class AuditSettings(_Model):
    log_all_tool_calls: bool = True
    log_all_model_calls: bool = True


class PolicyRules(_Model):
    max_tokens_per_task: int | None = Field(default=None, ge=1)
    max_tokens_per_run: int | None = Field(default=None, ge=1)
    max_cost_per_task_usd: float | None = Field(default=None, ge=0)
    allowed_models: list[str] | None = None
    denied_tools: list[str] = []
    blocked_tools: list[str] = []
    approval_required_tools: list[str] = []


class AgentPolicySpec(PolicyRules):
    scope: PolicyScope | None = None
    apply_mode: Literal["scoped", "global"] | None = None
    target_systems: list[Name] = []
    target_agents: list[Name] = []
    rules: PolicyRules | None = None
    audit: AuditSettings = AuditSettings()

    @model_validator(mode="after")
    def _scoped_needs_targets(self) -> AgentPolicySpec:
        if self.apply_mode == "scoped" and not self.systems and not self.agents:
            raise ValueError(
                "apply_mode scoped needs `target_systems` or `target_agents` (or `scope.system`)"
            )
        return self

    @property
    def systems(self) -> list[str]:
        """The systems the policy is scoped to (`scope.system` | `target_systems`); [] = all."""
        names = list(self.target_systems)
        if self.scope is not None and self.scope.system is not None:
            names.append(self.scope.system)
        return sorted(set(names))

    @property
    def agents(self) -> list[str]:
        """The agents the policy is scoped to (`scope.agents` | `target_agents`); [] = all."""
        names = list(self.target_agents)
        if self.scope is not None:
            names.extend(self.scope.agents)
        return sorted(set(names))

    def _rule_sets(self) -> list[PolicyRules]:
        return [self, self.rules] if self.rules is not None else [self]

    def applies_to(self, system: str, agent: str) -> bool:
        if self.apply_mode == "global":
            return True
        systems, agents = self.systems, self.agents
        return (not systems or system in systems) and (not agents or agent in agents)

    @property
    def max_tokens(self) -> int | None:
        values = [
            v
            for r in self._rule_sets()
            for v in (r.max_tokens_per_task, r.max_tokens_per_run)
            if v is not None
        ]
        return min(values) if values else None

    @property
    def max_cost_usd(self) -> float | None:
        values = [
            r.max_cost_per_task_usd
            for r in self._rule_sets()
            if r.max_cost_per_task_usd is not None
        ]
        return min(values) if values else None

    @property
    def models_allowed(self) -> list[str] | None:
        lists = [r.allowed_models for r in self._rule_sets() if r.allowed_models is not None]
        if not lists:
            return None
        allowed = set(lists[0])
        for other in lists[1:]:
            allowed &= set(other)
        return sorted(allowed)

    @property
    def tools_denied(self) -> list[str]:
        return sorted({t for r in self._rule_sets() for t in (*r.denied_tools, *r.blocked_tools)})

    @property
    def tools_needing_approval(self) -> list[str]:
        return sorted({t for r in self._rule_sets() for t in r.approval_required_tools})


class AgentPolicy(ResourceBase):
    kind_name: ClassVar[str] = "AgentPolicy"
    kind: Literal["AgentPolicy"]
    spec: AgentPolicySpec

    def applies_to(self, system: str, agent: str) -> bool:
        """Whether the policy governs `agent` in `system` (scope, targets, apply_mode)."""
        return self.spec.applies_to(system, agent)

    @property
    def max_tokens_per_task(self) -> int | None:
        """Token cap per task (`max_tokens_per_task` / `max_tokens_per_run`, top level or rules)."""
        return self.spec.max_tokens

    @property
    def max_cost_per_task_usd(self) -> float | None:
        return self.spec.max_cost_usd

    @property
    def allowed_models(self) -> list[str] | None:
        """Models the agents may call; None = any."""
        return self.spec.models_allowed

    @property
    def denied_tools(self) -> list[str]:
        """`denied_tools` | `blocked_tools`."""
        return self.spec.tools_denied

    @property
    def approval_required_tools(self) -> list[str]:
        return self.spec.tools_needing_approval

    @property
    def audit(self) -> AuditSettings:
        return self.spec.audit


class RolePermissions(_Model):
    tools: list[str] = []
    max_steps: int | None = Field(default=None, ge=1)


class AgentRoleSpec(_Model):
    agents: list[Name] = []
    permissions: RolePermissions = RolePermissions()


class AgentRole(ResourceBase):
    kind_name: ClassVar[str] = "AgentRole"
    kind: Literal["AgentRole"]
    spec: AgentRoleSpec


class ToolPermissionSpec(_Model):
    tool: str = Field(min_length=1)
    allowed_agents: list[Name] = []
    denied_agents: list[Name] = []
    approval_required: bool = False


class ToolPermission(ResourceBase):
    kind_name: ClassVar[str] = "ToolPermission"
    kind: Literal["ToolPermission"]
    spec: ToolPermissionSpec


Resource = (
    Agent
    | AgentSystem
    | AgentPolicy
    | AgentRole
    | ToolPermission
    | ModelEndpoint
    | Tool
    | McpServer
)

KINDS: dict[str, type[ResourceBase]] = {
    cls.kind_name: cls
    for cls in (
        Agent,
        AgentSystem,
        AgentPolicy,
        AgentRole,
        ToolPermission,
        ModelEndpoint,
        Tool,
        McpServer,
    )
}
"""Kind name -> model class."""
