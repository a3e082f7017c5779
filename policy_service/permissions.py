"""Orloj's permission check of a tool call: roles' permissions against `ToolPermission` gates
and their `operation_rules`. Pure functions, used by `rules.evaluate`.

As Orloj's `AgentToolAuthorizer`: the gates that apply are the ToolPermissions of the tool (its
name compared ignoring case) that are Orloj gates (`ToolPermission.gates`) and apply to the agent
(`apply_mode: global`, or `scoped` with the agent among `target_agents`). Without such a gate an
agent with roles needs `tool:<tool>:invoke` and `capability:<c>` for each of the tool's
`capabilities`; an agent without roles is not checked here. With gates, each gate's
`required_permissions` must be held (`match_mode: all`, or one of them for `any`); a gate with
neither `required_permissions` nor `operation_rules` requires `tool:<tool>:<action>` and the
capabilities. Then every gate's `operation_rules` give a verdict for each of the tool's operation
classes (the rule of that class, else the `*` rule, else allow), and the strictest of all wins:
deny > approval_required > allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from manifests.models.governance import capability_permission, tool_permission
from topics.messages import DecisionKind

_STRICTNESS = {"allow": 0, "approval_required": 1, "deny": 2}


@dataclass(frozen=True, slots=True)
class ToolRules:
    """What the engine knows of a tool: its capabilities and operation classes."""

    name: str
    capabilities: tuple[str, ...] = ()
    operations: tuple[str, ...] = ("read",)


@dataclass(frozen=True, slots=True)
class PermissionGate:
    """One Orloj-format `ToolPermission`, resolved."""

    name: str
    tool: str
    action: str = "invoke"
    required: tuple[str, ...] = ()
    """Normalised permission strings."""
    match_any: bool = False
    targets: frozenset[str] | None = None
    """Lowercased agent names for `apply_mode: scoped`; None for global."""
    operation_rules: tuple[tuple[str, str], ...] = ()
    """(operation class or `*`, verdict), in the manifest's order."""

    def applies_to(self, tool: str, agent: str) -> bool:
        if self.tool.lower() != tool.strip().lower():
            return False
        return self.targets is None or agent.lower() in self.targets


@dataclass(frozen=True, slots=True)
class PermissionVerdict:
    """A deny or an approval required, from a gate or from the roles."""

    decision: DecisionKind
    rule: str
    policy: str
    reason: str


def default_required(tool: str, rules: ToolRules | None, action: str = "invoke") -> list[str]:
    """`tool:<tool>:<action>` and `capability:<c>` for each of the tool's capabilities."""
    out = [tool_permission(tool, action or "invoke")]
    for capability in rules.capabilities if rules else ():
        token = capability_permission(capability)
        if token not in out:
            out.append(token)
    return out


def operation_verdict(rules: Iterable[tuple[str, str]], operations: Iterable[str]) -> str:
    """The strictest verdict of `rules` over the tool's operation classes."""
    rules = list(rules)
    verdict = "allow"
    for operation in operations:
        found = next((v for c, v in rules if c == operation), None)
        if found is None:
            found = next((v for c, v in rules if c == "*"), "allow")
        if _STRICTNESS[found] > _STRICTNESS[verdict]:
            verdict = found
    return verdict


def check_permissions(
    *,
    tool: str,
    agent: str,
    granted: frozenset[str],
    role_names: list[str],
    missing_roles: list[str],
    gates: Iterable[PermissionGate],
    tool_rules: ToolRules | None,
) -> PermissionVerdict | None:
    """The deny or approval the permissions impose on the call; None when they allow it."""
    if missing_roles:
        names = ", ".join(sorted(missing_roles))
        return PermissionVerdict(
            DecisionKind.DENY,
            "role_permissions",
            f"Agent/{agent}",
            f"agent {agent!r} names roles that are not applied ({names})",
        )
    applicable = [g for g in gates if g.applies_to(tool, agent)]
    if not applicable:
        if not role_names:
            return None
        missing = [p for p in default_required(tool, tool_rules) if p not in granted]
        if not missing:
            return None
        names = ", ".join(sorted(role_names))
        return PermissionVerdict(
            DecisionKind.DENY,
            "role_permissions",
            f"AgentRole/{names}",
            f"tool {tool!r} is not among the tools of {agent!r}'s roles ({names}): "
            f"missing {', '.join(missing)}",
        )
    strictest, by = "allow", ""
    for gate in applicable:
        required = list(gate.required)
        if not required and not gate.operation_rules:
            required = default_required(tool, tool_rules, gate.action)
        source = f"ToolPermission/{gate.name}"
        if required:
            held = [p for p in required if p in granted]
            if gate.match_any and not held:
                return PermissionVerdict(
                    DecisionKind.DENY,
                    "tool_permission",
                    source,
                    f"agent {agent!r} holds none of {', '.join(required)} for tool {tool!r}",
                )
            missing = [p for p in required if p not in granted]
            if not gate.match_any and missing:
                return PermissionVerdict(
                    DecisionKind.DENY,
                    "tool_permission",
                    source,
                    f"agent {agent!r} lacks {', '.join(missing)} for tool {tool!r}",
                )
        if gate.operation_rules:
            operations = tool_rules.operations if tool_rules else ("read",)
            verdict = operation_verdict(gate.operation_rules, operations)
            if _STRICTNESS[verdict] > _STRICTNESS[strictest]:
                strictest, by = verdict, gate.name
    operations_text = ", ".join(tool_rules.operations if tool_rules else ("read",))
    if strictest == "deny":
        return PermissionVerdict(
            DecisionKind.DENY,
            "operation_rules",
            f"ToolPermission/{by}",
            f"tool {tool!r} ({operations_text}) is denied to {agent!r} by its operation rules",
        )
    if strictest == "approval_required":
        return PermissionVerdict(
            DecisionKind.APPROVAL_REQUIRED,
            "operation_rules",
            f"ToolPermission/{by}",
            f"tool {tool!r} ({operations_text}) needs a person's approval",
        )
    return None
