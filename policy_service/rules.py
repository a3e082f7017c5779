"""The rule engine: plain data in, a verdict out. No Kafka, no database (unit-tested alone).

`RuleSet` is a snapshot of the rules of the applied manifests (`rules_from_resources` builds it);
`evaluate(rules, request, approved=...)` checks, in this order, and stops at the first that fails:

1. the system and the agent are known, and the agent belongs to the system;
2. step limits (model calls): `step_number` below the smallest `max_steps` of the agent and of
   its roles;
3. model calls: every applicable policy's `allowed_models`;
4. tool calls: denied/blocked tools of every applicable policy, the tool's `ToolPermission`
   (`denied_agents`, `allowed_agents`), the permissions of the agent's roles against the tool's
   Orloj-format ToolPermissions (`permissions.py`: `required_permissions`, `match_mode`,
   `apply_mode`/`target_agents`; without one, an agent with roles needs `tool:<tool>:invoke` and
   the tool's capabilities), a deny of their `operation_rules`, the agent's own tool list; then
   approvals (`operation_rules`, `ToolPermission.approval_required`,
   `AgentPolicy.approval_required_tools`) unless the call carries a granted approval.

Denials come before approvals and approvals before allow, so when several policies apply the
strictest wins and the verdict names its rule and policy. An allowed model call carries the budget
caps of every applicable policy; the service reserves against all of them (`budgets.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from manifests.builtins import DELEGATE_TOOL
from manifests.models import (
    Agent,
    AgentPolicy,
    AgentRole,
    AgentSystem,
    ModelEndpoint,
    ResourceBase,
    Tool,
    ToolPermission,
    normalize_permission,
)
from policy_service.permissions import PermissionGate, ToolRules, check_permissions
from topics.messages import Action, AuthorizationRequest, DecisionKind


@dataclass(frozen=True, slots=True)
class AgentPolicyRules:
    """The rules of one applied `AgentPolicy` (not `manifests.models.PolicyRules`, the manifest's
    own rules block), resolved for the engine."""

    name: str
    systems: frozenset[str] = frozenset()
    """Empty = every system."""
    agents: frozenset[str] = frozenset()
    """Empty = every agent."""
    global_scope: bool = False
    max_tokens_per_task: int | None = None
    max_cost_per_task_usd: float | None = None
    allowed_models: frozenset[str] | None = None
    """None = any model."""
    denied_tools: frozenset[str] = frozenset()
    approval_required_tools: frozenset[str] = frozenset()

    def applies_to(self, system: str, agent: str) -> bool:
        if self.global_scope:
            return True
        return (not self.systems or system in self.systems) and (
            not self.agents or agent in self.agents
        )


@dataclass(frozen=True, slots=True)
class RoleRules:
    name: str
    agents: frozenset[str] = frozenset()
    granted: frozenset[str] = frozenset()
    """Normalised permission strings (Podium's `tools: [t]` is `tool:<t>:invoke`)."""
    max_steps: int | None = None


@dataclass(frozen=True, slots=True)
class ToolPermissionRules:
    name: str
    tool: str
    allowed_agents: frozenset[str] = frozenset()
    """Empty = every agent not denied."""
    denied_agents: frozenset[str] = frozenset()
    approval_required: bool = False


@dataclass(frozen=True, slots=True)
class AgentRules:
    name: str
    tools: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    max_steps: int | None = None
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class EndpointRules:
    name: str
    provider: str
    pricing: object | None = None
    """The endpoint's own price override (manifests.models.Pricing), handed to the pricer."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    systems: dict[str, frozenset[str]] = field(default_factory=dict)
    """System name -> its agents."""
    agents: dict[str, AgentRules] = field(default_factory=dict)
    policies: tuple[AgentPolicyRules, ...] = ()
    roles: tuple[RoleRules, ...] = ()
    tool_permissions: tuple[ToolPermissionRules, ...] = ()
    endpoints: dict[str, EndpointRules] = field(default_factory=dict)
    gates: tuple[PermissionGate, ...] = ()
    """The Orloj-format ToolPermissions."""
    tools: dict[str, ToolRules] = field(default_factory=dict)

    def policies_for(self, system: str, agent: str) -> list[AgentPolicyRules]:
        return [p for p in self.policies if p.applies_to(system, agent)]

    def roles_of(self, agent: str) -> list[RoleRules]:
        declared = self.agents[agent].roles if agent in self.agents else frozenset()
        return [r for r in self.roles if agent in r.agents or r.name in declared]

    def missing_roles(self, agent: str) -> list[str]:
        """Roles the agent names that are not applied (its tool calls are then denied)."""
        declared = self.agents[agent].roles if agent in self.agents else frozenset()
        return sorted(declared - {r.name for r in self.roles})


@dataclass(frozen=True, slots=True)
class BudgetCap:
    policy: str
    max_tokens: int | None
    max_usd: float | None


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: DecisionKind
    rule: str = ""
    policy: str = ""
    reason: str = ""
    caps: tuple[BudgetCap, ...] = ()


def _deny(rule: str, policy: str, reason: str) -> Verdict:
    return Verdict(DecisionKind.DENY, rule, policy, reason)


def evaluate(rules: RuleSet, request: AuthorizationRequest, *, approved: bool = False) -> Verdict:
    """The verdict of the rules on one call (budgets are reserved by the caller)."""
    system, agent = request.system, request.agent
    if system not in rules.systems:
        return _deny("unknown_system", "", f"system {system!r} is not applied")
    if agent not in rules.agents or agent not in rules.systems[system]:
        return _deny(
            "unknown_agent", f"AgentSystem/{system}", f"agent {agent!r} is not in {system!r}"
        )
    policies = rules.policies_for(system, agent)
    roles = rules.roles_of(agent)
    if request.action == Action.MODEL_CALL:
        verdict = _model_call(rules, request, policies, roles)
    else:
        verdict = _tool_call(rules, request, policies, roles, approved=approved)
    return verdict


def _model_call(
    rules: RuleSet,
    request: AuthorizationRequest,
    policies: list[AgentPolicyRules],
    roles: list[RoleRules],
) -> Verdict:
    agent = rules.agents[request.agent]
    limits = [(f"Agent/{agent.name}", agent.max_steps)] + [
        (f"AgentRole/{r.name}", r.max_steps) for r in roles
    ]
    for source, max_steps in limits:
        if max_steps is not None and request.step_number >= max_steps:
            return _deny(
                "max_steps",
                source,
                f"agent {agent.name!r} has used {request.step_number} of its {max_steps} steps",
            )
    model = request.model or ""
    for policy in policies:
        if policy.allowed_models is None:
            continue
        qualified = f"{request.endpoint}/{model}" if request.endpoint else model
        if model not in policy.allowed_models and qualified not in policy.allowed_models:
            allowed = ", ".join(sorted(policy.allowed_models)) or "none"
            return _deny(
                "allowed_models",
                f"AgentPolicy/{policy.name}",
                f"model {model!r} is not allowed for {request.agent!r} (allowed: {allowed})",
            )
    caps = tuple(
        BudgetCap(p.name, p.max_tokens_per_task, p.max_cost_per_task_usd)
        for p in policies
        if p.max_tokens_per_task is not None or p.max_cost_per_task_usd is not None
    )
    return Verdict(DecisionKind.ALLOW, "allow", "", "no rule denies this model call", caps)


def _tool_call(
    rules: RuleSet,
    request: AuthorizationRequest,
    policies: list[AgentPolicyRules],
    roles: list[RoleRules],
    *,
    approved: bool,
) -> Verdict:
    tool, agent = request.tool or "", request.agent
    if not tool:
        return _deny("invalid_request", "", "a tool call must name its tool")
    for policy in policies:
        if tool in policy.denied_tools:
            return _deny(
                "denied_tools",
                f"AgentPolicy/{policy.name}",
                f"tool {tool!r} is denied to {agent!r}",
            )
    permissions = [p for p in rules.tool_permissions if p.tool == tool]
    for permission in permissions:
        source = f"ToolPermission/{permission.name}"
        if agent in permission.denied_agents:
            return _deny("tool_permission", source, f"agent {agent!r} may not use {tool!r}")
        if permission.allowed_agents and agent not in permission.allowed_agents:
            return _deny(
                "tool_permission",
                source,
                f"tool {tool!r} is allowed only to {', '.join(sorted(permission.allowed_agents))}",
            )
    gated = None
    if tool != DELEGATE_TOOL:
        gated = check_permissions(
            tool=tool,
            agent=agent,
            granted=frozenset().union(*(r.granted for r in roles)),
            role_names=[r.name for r in roles],
            missing_roles=rules.missing_roles(agent),
            gates=rules.gates,
            tool_rules=rules.tools.get(tool),
        )
        if gated is not None and gated.decision == DecisionKind.DENY:
            return _deny(gated.rule, gated.policy, gated.reason)
    declared = rules.agents[agent].tools
    if tool != DELEGATE_TOOL and tool not in declared:
        return _deny(
            "agent_tools", f"Agent/{agent}", f"agent {agent!r} does not list tool {tool!r}"
        )
    if not approved:
        if gated is not None:
            return Verdict(gated.decision, gated.rule, gated.policy, gated.reason)
        for permission in permissions:
            if permission.approval_required:
                return Verdict(
                    DecisionKind.APPROVAL_REQUIRED,
                    "approval_required",
                    f"ToolPermission/{permission.name}",
                    f"tool {tool!r} needs a person's approval",
                )
        for policy in policies:
            if tool in policy.approval_required_tools:
                return Verdict(
                    DecisionKind.APPROVAL_REQUIRED,
                    "approval_required",
                    f"AgentPolicy/{policy.name}",
                    f"tool {tool!r} needs a person's approval",
                )
    reason = "approved by a person" if approved else "no rule denies this tool call"
    return Verdict(DecisionKind.ALLOW, "allow", "", reason)


def rules_from_resources(resources: Iterable[ResourceBase]) -> RuleSet:
    """A RuleSet from applied manifest resources (the catalog's contents)."""
    systems: dict[str, frozenset[str]] = {}
    agents: dict[str, AgentRules] = {}
    policies: list[AgentPolicyRules] = []
    roles: list[RoleRules] = []
    permissions: list[ToolPermissionRules] = []
    gates: list[PermissionGate] = []
    tools: dict[str, ToolRules] = {}
    endpoints: dict[str, EndpointRules] = {}
    for resource in resources:
        if isinstance(resource, AgentSystem):
            systems[resource.name] = frozenset(resource.spec.agents)
        elif isinstance(resource, Agent):
            spec = resource.spec
            agents[resource.name] = AgentRules(
                name=resource.name,
                tools=frozenset(spec.granted_tools),
                roles=frozenset(spec.roles),
                max_steps=spec.limits.max_steps,
                endpoint=spec.endpoint_name,
            )
        elif isinstance(resource, AgentPolicy):
            policies.append(
                AgentPolicyRules(
                    name=resource.name,
                    systems=frozenset(resource.spec.systems),
                    agents=frozenset(resource.spec.agents),
                    global_scope=resource.spec.apply_mode == "global",
                    max_tokens_per_task=resource.max_tokens_per_task,
                    max_cost_per_task_usd=resource.max_cost_per_task_usd,
                    allowed_models=(
                        None
                        if resource.allowed_models is None
                        else frozenset(resource.allowed_models)
                    ),
                    denied_tools=frozenset(resource.denied_tools),
                    approval_required_tools=frozenset(resource.approval_required_tools),
                )
            )
        elif isinstance(resource, AgentRole):
            roles.append(
                RoleRules(
                    name=resource.name,
                    agents=frozenset(resource.spec.agents),
                    granted=resource.spec.granted,
                    max_steps=resource.spec.max_steps,
                )
            )
        elif isinstance(resource, Tool):
            tools[resource.name] = ToolRules(
                name=resource.name,
                capabilities=tuple(resource.spec.capabilities),
                operations=resource.spec.operations,
            )
        elif isinstance(resource, ToolPermission):
            if resource.gates:
                gates.append(_gate(resource))
            permissions.append(
                ToolPermissionRules(
                    name=resource.name,
                    tool=resource.tool_name,
                    allowed_agents=frozenset(resource.spec.allowed_agents),
                    denied_agents=frozenset(resource.spec.denied_agents),
                    approval_required=resource.spec.approval_required,
                )
            )
        elif isinstance(resource, ModelEndpoint):
            endpoints[resource.name] = EndpointRules(
                name=resource.name, provider=resource.spec.provider, pricing=resource.spec.pricing
            )
    return RuleSet(
        systems=systems,
        agents=agents,
        policies=tuple(sorted(policies, key=lambda p: p.name)),
        roles=tuple(sorted(roles, key=lambda r: r.name)),
        tool_permissions=tuple(sorted(permissions, key=lambda p: p.name)),
        endpoints=endpoints,
        gates=tuple(sorted(gates, key=lambda g: g.name)),
        tools=tools,
    )


def _gate(resource: ToolPermission) -> PermissionGate:
    spec = resource.spec
    return PermissionGate(
        name=resource.name,
        tool=resource.tool_name,
        action=spec.action,
        required=tuple(dict.fromkeys(normalize_permission(p) for p in spec.required_permissions)),
        match_any=spec.match_mode == "any",
        targets=(
            None
            if spec.apply_mode == "global"
            else frozenset(a.lower() for a in spec.target_agents)
        ),
        operation_rules=tuple((r.operation_class, r.verdict) for r in spec.operation_rules),
    )
