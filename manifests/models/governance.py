"""Governance kinds: `AgentPolicy` (budgets, models, tools), `AgentRole`, `ToolPermission`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

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
