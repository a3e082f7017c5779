"""The rule engine alone: no Kafka, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policy_service.rules import RuleSet, evaluate
from tests.policy.manifests_fixture import rule_set
from topics.messages import Action, AuthorizationRequest, DecisionKind


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return rule_set()


def request(**fields: Any) -> AuthorizationRequest:
    base: dict[str, Any] = {
        "request_id": "r1",
        "task_id": "t1",
        "system": "report",
        "agent": "researcher",
        "action": Action.MODEL_CALL,
        "model": "mock-small",
        "endpoint": "local",
        "reply_to": "x",
        "deadline": datetime(2100, 1, 1, tzinfo=UTC),
    }
    base.update(fields)
    return AuthorizationRequest(**base)


def test_allowed_model_call_carries_every_applicable_budget(rules: RuleSet) -> None:
    verdict = evaluate(rules, request())
    assert verdict.decision == DecisionKind.ALLOW
    assert {c.policy for c in verdict.caps} == {"cost-guard", "usd-guard"}


def test_model_outside_allowed_models_is_denied(rules: RuleSet) -> None:
    verdict = evaluate(rules, request(model="mock-large"))
    assert (verdict.decision, verdict.rule, verdict.policy) == (
        DecisionKind.DENY,
        "allowed_models",
        "AgentPolicy/cost-guard",
    )
    assert "mock-large" in verdict.reason


def test_denied_tool(rules: RuleSet) -> None:
    verdict = evaluate(rules, request(action=Action.TOOL_CALL, tool="shell"))
    assert (verdict.decision, verdict.rule, verdict.policy) == (
        DecisionKind.DENY,
        "denied_tools",
        "AgentPolicy/cost-guard",
    )


def test_tool_permission_denied_agent(rules: RuleSet) -> None:
    verdict = evaluate(rules, request(agent="writer", action=Action.TOOL_CALL, tool="send-email"))
    assert (verdict.rule, verdict.policy) == ("tool_permission", "ToolPermission/email-policy")
    assert verdict.decision == DecisionKind.DENY


def test_role_limits_tools(rules: RuleSet) -> None:
    allowed = evaluate(rules, request(agent="writer", action=Action.TOOL_CALL, tool="web-search"))
    assert allowed.decision == DecisionKind.ALLOW
    rules_without_permission = RuleSet(
        systems=rules.systems,
        agents=rules.agents,
        policies=(),
        roles=rules.roles,
        tool_permissions=(),
        endpoints=rules.endpoints,
    )
    verdict = evaluate(
        rules_without_permission,
        request(agent="writer", action=Action.TOOL_CALL, tool="send-email"),
    )
    assert (verdict.decision, verdict.rule, verdict.policy) == (
        DecisionKind.DENY,
        "role_permissions",
        "AgentRole/editor",
    )


def test_tool_not_listed_by_agent(rules: RuleSet) -> None:
    verdict = evaluate(rules, request(agent="writer", action=Action.TOOL_CALL, tool="wire-money"))
    assert verdict.decision == DecisionKind.DENY


def test_step_limits_of_agent_and_role(rules: RuleSet) -> None:
    assert evaluate(rules, request(step_number=3)).decision == DecisionKind.ALLOW
    assert evaluate(rules, request(step_number=4)).rule == "max_steps"
    writer = evaluate(rules, request(agent="writer", model="mock-small", step_number=3))
    assert (writer.rule, writer.policy) == ("max_steps", "AgentRole/editor")


def test_approval_required_then_approved(rules: RuleSet) -> None:
    call = request(action=Action.TOOL_CALL, tool="wire-money")
    verdict = evaluate(rules, call)
    assert (verdict.decision, verdict.policy) == (
        DecisionKind.APPROVAL_REQUIRED,
        "ToolPermission/money-needs-a-human",
    )
    assert evaluate(rules, call, approved=True).decision == DecisionKind.ALLOW


def test_unknown_system_and_agent(rules: RuleSet) -> None:
    assert evaluate(rules, request(system="nope")).rule == "unknown_system"
    assert evaluate(rules, request(agent="ghost")).rule == "unknown_agent"


def test_deny_beats_approval(rules: RuleSet) -> None:
    text_rules = rule_set(
        __import__("tests.policy.manifests_fixture", fromlist=["SYSTEM_YAML"]).SYSTEM_YAML
        + """
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {name: no-money}
spec:
  blocked_tools: [wire-money]
"""
    )
    verdict = evaluate(text_rules, request(action=Action.TOOL_CALL, tool="wire-money"))
    assert (verdict.decision, verdict.policy) == (DecisionKind.DENY, "AgentPolicy/no-money")
