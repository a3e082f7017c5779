"""Governance kinds: `AgentPolicy` (budgets, models, tools), `AgentRole`, `ToolPermission`.

Both spellings are read: Podium's (`permissions: {tools, max_steps}`, `tool`, `allowed_agents`,
`denied_agents`, `approval_required`) and Orloj v0.3's (`permissions: [tool:<t>:invoke,
capability:<c>]`, `tool_ref`, `required_permissions`, `match_mode`, `apply_mode`,
`target_agents`, `operation_rules`). Permission strings are compared as Orloj normalises them
(`normalize_permission`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from manifests.models._base import (
    Name,
    ResourceBase,
    _Model,
)


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


def _lowered(value: object) -> object:
    # Orloj trims and lowercases its enumerations before checking them.
    return value.strip().lower() if isinstance(value, str) else value


def _unique(value: object) -> object:
    """Orloj's list normalisation: trimmed, empty ones dropped, deduplicated ignoring case."""
    if not isinstance(value, list):
        return value
    out: list[object] = []
    seen: set[str] = set()
    for item in value:
        if isinstance(item, str):
            item = item.strip()
            if not item or item.lower() in seen:
                continue
            seen.add(item.lower())
        out.append(item)
    return out


def normalize_permission(value: str) -> str:
    """A permission string as Orloj compares it: lowercased, without spaces, `/`, `\\` and `-`
    read as `_` (so `tool:web-search:invoke` is `tool:web_search:invoke`)."""
    value = value.strip().lower().replace(" ", "")
    for old in ("/", "\\", "-"):
        value = value.replace(old, "_")
    return value


def permission_token(value: str) -> str:
    """A tool name, action or capability inside a permission string (Orloj's token form)."""
    value = value.strip()
    for old in (" ", "/", "\\", "-"):
        value = value.replace(old, "_")
    return value.lower().strip("_:")


def tool_permission(tool: str, action: str = "invoke") -> str:
    """`tool:<tool>:<action>`, normalised."""
    return normalize_permission(f"tool:{permission_token(tool)}:{permission_token(action)}")


def capability_permission(capability: str) -> str:
    """`capability:<capability>`, normalised."""
    return normalize_permission(f"capability:{permission_token(capability)}")


Lowered = BeforeValidator(_lowered)
Unique = BeforeValidator(_unique)


class AgentPolicySpec(PolicyRules):
    scope: PolicyScope | None = None
    apply_mode: Annotated[Literal["scoped", "global"] | None, Lowered] = None
    target_systems: Annotated[list[Name], Unique] = []
    target_tasks: Annotated[list[Name], Unique] = []
    target_agents: Annotated[list[Name], Unique] = []
    rules: PolicyRules | None = None
    audit: AuditSettings = AuditSettings()

    @field_validator("target_tasks")
    @classmethod
    def _no_task_targets(cls, value: list[str]) -> list[str]:
        # Refused rather than ignored: the steps of a task do not carry the Task's name, so the
        # policy service could not tell which task a call belongs to.
        if value:
            raise ValueError(
                "`target_tasks` is not supported yet (a call does not carry its Task's name); "
                "scope the policy with `target_systems` or `target_agents`"
            )
        return value

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
    """`permissions` is Podium's `{tools, max_steps}` or Orloj's list of permission strings."""

    description: str = ""
    agents: list[Name] = []
    permissions: RolePermissions | Annotated[list[Annotated[str, Field(min_length=1)]], Unique] = (
        RolePermissions()
    )

    @property
    def granted(self) -> frozenset[str]:
        """The normalised permissions the role grants; Podium's `tools: [t]` grants
        `tool:<t>:invoke`."""
        if isinstance(self.permissions, RolePermissions):
            return frozenset(tool_permission(t) for t in self.permissions.tools)
        return frozenset(normalize_permission(p) for p in self.permissions)

    @property
    def tools(self) -> list[str]:
        """The tools named by Podium's `permissions.tools` (checked as references)."""
        return list(self.permissions.tools) if isinstance(self.permissions, RolePermissions) else []

    @property
    def max_steps(self) -> int | None:
        if isinstance(self.permissions, RolePermissions):
            return self.permissions.max_steps
        return None


class AgentRole(ResourceBase):
    kind_name: ClassVar[str] = "AgentRole"
    kind: Literal["AgentRole"]
    spec: AgentRoleSpec


def _operation_class(value: object) -> object:
    value = _lowered(value)
    return "*" if value == "" else value


def _verdict(value: object) -> object:
    value = _lowered(value)
    return "allow" if value == "" else value


OperationClass = Literal["read", "write", "delete", "admin"]
OperationVerdict = Literal["allow", "deny", "approval_required"]


class OperationRule(_Model):
    """The verdict for the tools of one operation class (`*`: any class no other rule names)."""

    operation_class: Annotated[OperationClass | Literal["*"], BeforeValidator(_operation_class)] = (
        "*"
    )
    verdict: Annotated[OperationVerdict, BeforeValidator(_verdict)] = "allow"


ORLOJ_PERMISSION_FIELDS = frozenset(
    {
        "tool_ref",
        "action",
        "required_permissions",
        "match_mode",
        "apply_mode",
        "target_agents",
        "operation_rules",
    }
)
"""Fields that make a ToolPermission an Orloj permission gate (see `ToolPermission.gates`)."""


class ToolPermissionSpec(_Model):
    tool: str | None = Field(default=None, min_length=1)
    tool_ref: str | None = Field(default=None, min_length=1)
    action: Annotated[str, Field(min_length=1), Lowered] = "invoke"
    required_permissions: Annotated[list[str], Unique] = []
    match_mode: Annotated[Literal["all", "any"], Lowered] = "all"
    apply_mode: Annotated[Literal["global", "scoped"], Lowered] = "global"
    target_agents: Annotated[list[Name], Unique] = []
    operation_rules: list[OperationRule] = []
    allowed_agents: list[Name] = []
    denied_agents: list[Name] = []
    approval_required: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ToolPermissionSpec:
        if self.tool is not None and self.tool_ref is not None and self.tool != self.tool_ref:
            raise ValueError(
                f"`tool` ({self.tool!r}) and `tool_ref` ({self.tool_ref!r}) name different tools"
            )
        if self.apply_mode == "scoped" and not self.target_agents:
            raise ValueError("`target_agents` is required when apply_mode is scoped")
        return self


class ToolPermission(ResourceBase):
    kind_name: ClassVar[str] = "ToolPermission"
    kind: Literal["ToolPermission"]
    spec: ToolPermissionSpec

    @property
    def tool_name(self) -> str:
        """`tool` | `tool_ref`, else the permission's own name (Orloj's default)."""
        return (self.spec.tool or self.spec.tool_ref or self.metadata.name).strip()

    @property
    def gates(self) -> bool:
        """Whether it is an Orloj permission gate: the agents it applies to need its
        `required_permissions` (or `tool:<tool>:<action>` and the tool's capabilities, without
        them or `operation_rules`). Podium's own form (`tool`, `allowed_agents`,
        `denied_agents`, `approval_required`) names agents instead and is no gate."""
        return bool(self.spec.model_fields_set & ORLOJ_PERMISSION_FIELDS)

    def applies_to(self, agent: str) -> bool:
        """`apply_mode: global` (the default), or `scoped` to `target_agents` (any case)."""
        if self.spec.apply_mode == "global":
            return True
        return agent.lower() in {a.lower() for a in self.spec.target_agents}
