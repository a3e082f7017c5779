"""The engine on Orloj-format governance: each rule of its `AgentToolAuthorizer` pinned (role
permission strings, capabilities, `required_permissions` with `match_mode`, `apply_mode`,
`operation_rules` and strictest-wins), beside Podium's own spelling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policy_service.permissions import operation_verdict
from policy_service.rules import RuleSet, Verdict, evaluate
from tests.policy.manifests_fixture import rule_set
from topics.messages import Action, AuthorizationRequest, DecisionKind

BASE = """
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: local}
spec: {provider: mock, default_model: m}
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: db}
spec:
  endpoint: "http://127.0.0.1:9/db"
  operation_classes: [%(db_classes)s]
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: search}
spec:
  endpoint: "http://127.0.0.1:9/search"
  capabilities: [Web.Read]
---
apiVersion: orloj.dev/v1
kind: AgentRole
metadata: {name: analyst-role}
spec:
  description: reads
  permissions: [tool:search:invoke, "capability:web.read", "tool:DB:invoke"]
---
apiVersion: orloj.dev/v1
kind: AgentRole
metadata: {name: bare-role}
spec:
  permissions: [tool:search:invoke]
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: analyst}
spec: {prompt: p, model_ref: local, tools: [db, search], roles: [analyst-role]}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: bare}
spec: {prompt: p, model_ref: local, tools: [db, search], roles: [bare-role]}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: free}
spec: {prompt: p, model_ref: local, tools: [db, search]}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: s}
spec:
  agents: [analyst, bare, free]
  graph: {analyst: {next: bare}, bare: {next: free}}
"""


def rules(extra: str = "", db_classes: str = "read") -> RuleSet:
    return rule_set(BASE % {"db_classes": db_classes} + extra)


def permission(spec: str, name: str = "gate") -> str:
    return (
        f"---\napiVersion: orloj.dev/v1\nkind: ToolPermission\nmetadata: {{name: {name}}}\n"
        f"spec: {spec}\n"
    )


def call(ruleset: RuleSet, agent: str, tool: str, **fields: Any) -> Verdict:
    request = AuthorizationRequest(
        request_id="r",
        task_id="t",
        system="s",
        agent=agent,
        action=Action.TOOL_CALL,
        tool=tool,
        reply_to="x",
        deadline=datetime(2100, 1, 1, tzinfo=UTC),
    )
    return evaluate(ruleset, request, **fields)


def outcome(verdict: Verdict) -> tuple[str, str, str]:
    return (str(verdict.decision), verdict.rule, verdict.policy)


def test_without_gates_an_agent_with_roles_needs_the_tool_and_its_capabilities() -> None:
    ruleset = rules()
    assert call(ruleset, "analyst", "search").decision == DecisionKind.ALLOW
    # bare-role grants tool:search:invoke but not the tool's capability web.read.
    denied = call(ruleset, "bare", "search")
    assert outcome(denied) == ("deny", "role_permissions", "AgentRole/bare-role")
    assert "capability:web.read" in denied.reason
    assert outcome(call(ruleset, "bare", "db"))[1] == "role_permissions"
    # An agent without roles is not checked by permissions (Orloj's rule, Podium's too).
    assert call(ruleset, "free", "db").decision == DecisionKind.ALLOW


def test_match_mode_all_needs_every_permission_any_needs_one() -> None:
    needs = "{tool_ref: db, match_mode: %s, required_permissions: [tool:db:invoke, admin:x]}"
    every = rules(permission(needs % "all"))
    verdict = call(every, "analyst", "db")
    assert outcome(verdict) == ("deny", "tool_permission", "ToolPermission/gate")
    assert "admin:x" in verdict.reason
    one = rules(permission(needs % "any"))
    assert call(one, "analyst", "db").decision == DecisionKind.ALLOW
    none_held = rules(permission("{tool_ref: db, match_mode: any, required_permissions: [a, b]}"))
    assert outcome(call(none_held, "analyst", "db"))[1] == "tool_permission"


def test_a_global_gate_binds_agents_without_roles_too() -> None:
    gate = rules(permission("{tool_ref: db, required_permissions: [tool:db:invoke]}"))
    assert outcome(call(gate, "free", "db")) == ("deny", "tool_permission", "ToolPermission/gate")
    assert call(gate, "analyst", "db").decision == DecisionKind.ALLOW


def test_a_scoped_gate_binds_its_target_agents_only() -> None:
    scoped = rules(
        permission(
            "{tool_ref: db, apply_mode: scoped, target_agents: [Analyst], "
            "required_permissions: [never:held]}"
        )
    )
    assert outcome(call(scoped, "analyst", "db"))[1] == "tool_permission"  # any case
    assert call(scoped, "free", "db").decision == DecisionKind.ALLOW


def test_a_gate_without_requirements_requires_the_tools_own_permissions() -> None:
    gate = rules(permission("{tool_ref: search}"))
    assert call(gate, "analyst", "search").decision == DecisionKind.ALLOW
    assert "capability:web.read" in call(gate, "bare", "search").reason
    acting = rules(permission("{tool_ref: search, action: Read}"))
    assert "tool:search:read" in call(acting, "analyst", "search").reason


def test_each_operation_rule_verdict() -> None:
    rule = "{tool_ref: db, operation_rules: [{operation_class: %s, verdict: %s}]}"
    allowed = rules(permission(rule % ("read", "allow")))
    assert call(allowed, "free", "db").decision == DecisionKind.ALLOW
    denied = rules(permission(rule % ("read", "deny")))
    assert outcome(call(denied, "free", "db")) == (
        "deny",
        "operation_rules",
        "ToolPermission/gate",
    )
    approval = rules(permission(rule % ("read", "approval_required")))
    verdict = call(approval, "free", "db")
    assert outcome(verdict) == ("approval_required", "operation_rules", "ToolPermission/gate")
    assert call(approval, "free", "db", approved=True).decision == DecisionKind.ALLOW
    other_class = rules(permission(rule % ("write", "deny")))
    assert call(other_class, "free", "db").decision == DecisionKind.ALLOW
    wildcard = rules(permission(rule % ("'*'", "deny")))
    assert call(wildcard, "free", "db").decision == DecisionKind.DENY


def test_operation_classes_default_by_risk() -> None:
    rule = "{tool_ref: db, operation_rules: [{operation_class: write, verdict: deny}]}"
    text = BASE.replace("operation_classes: [%(db_classes)s]", "risk_level: %(db_classes)s")
    assert evaluate_db(text % {"db_classes": "low"}, rule) == DecisionKind.ALLOW
    assert evaluate_db(text % {"db_classes": "critical"}, rule) == DecisionKind.DENY


def evaluate_db(text: str, rule: str) -> DecisionKind:
    return call(rule_set(text + permission(rule)), "free", "db").decision


def test_strictest_verdict_wins_across_classes_and_gates() -> None:
    assert operation_verdict([("read", "allow"), ("write", "approval_required")], ["read"]) == (
        "allow"
    )
    rules_ = [("read", "allow"), ("write", "approval_required"), ("delete", "deny")]
    assert operation_verdict(rules_, ["read", "write"]) == "approval_required"
    assert operation_verdict(rules_, ["write", "delete", "read"]) == "deny"
    # The class's own rule comes before the wildcard.
    assert operation_verdict([("*", "deny"), ("read", "allow")], ["read"]) == "allow"
    two = rules(
        permission(
            "{tool_ref: db, operation_rules: "
            "[{operation_class: write, verdict: approval_required}]}",
            "a-approve",
        )
        + permission(
            "{tool_ref: db, operation_rules: [{operation_class: delete, verdict: deny}]}",
            "b-deny",
        ),
        db_classes="write, delete",
    )
    assert outcome(call(two, "free", "db")) == ("deny", "operation_rules", "ToolPermission/b-deny")


def test_an_operation_deny_beats_a_podium_approval() -> None:
    both = rules(
        permission("{tool: db, approval_required: true}", "ask")
        + permission("{tool_ref: db, operation_rules: [{verdict: deny}]}", "no")
    )
    assert outcome(call(both, "free", "db")) == ("deny", "operation_rules", "ToolPermission/no")


def test_podiums_tool_permission_is_not_a_gate() -> None:
    # `tool` + `allowed_agents` names agents; it does not ask `free` for any permission.
    podium = rules(permission("{tool: db, allowed_agents: [free, analyst]}"))
    assert call(podium, "free", "db").decision == DecisionKind.ALLOW
    assert outcome(call(podium, "bare", "db"))[1] == "tool_permission"


def test_the_tutorial_roles_and_permissions_decide_as_before() -> None:
    tutorial = rule_set()
    assert call_report(tutorial, "writer", "web-search") == DecisionKind.ALLOW
    assert call_report(tutorial, "writer", "send-email") == DecisionKind.DENY


def call_report(ruleset: RuleSet, agent: str, tool: str) -> DecisionKind:
    request = AuthorizationRequest(
        request_id="r",
        task_id="t",
        system="report",
        agent=agent,
        action=Action.TOOL_CALL,
        tool=tool,
        reply_to="x",
        deadline=datetime(2100, 1, 1, tzinfo=UTC),
    )
    return evaluate(ruleset, request).decision
