"""Operators' controls alone (`controls.ControlBook`, and `decision.decide` given its check): no
Kafka, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy_service.controls import ControlBook, TokenBucket, targets_of
from policy_service.decision import decide
from policy_service.rules import RuleSet
from tests.policy.manifests_fixture import pricer, rule_set
from topics.messages import Action, AuthorizationRequest, Control, Decision, DecisionKind

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
SET_AT = datetime(2030, 1, 1, 11, 58, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return rule_set()


def call(**fields: Any) -> AuthorizationRequest:
    base: dict[str, Any] = {
        "request_id": "r1",
        "task_id": "t1",
        "system": "report",
        "agent": "researcher",
        "step_id": "s1",
        "action": Action.TOOL_CALL,
        "tool": "web-search",
        "reply_to": "replies",
        "deadline": NOW + timedelta(seconds=5),
    }
    base.update(fields)
    return AuthorizationRequest(**base)


def model_call(**fields: Any) -> AuthorizationRequest:
    base: dict[str, Any] = {"model": "mock-small", "endpoint": "local", **fields}
    return call(action=Action.MODEL_CALL, tool=None, **base)


def control(target: str, state: str = "paused", **fields: Any) -> Control:
    base: dict[str, Any] = {"set_by": "ana", "set_at": SET_AT, "reason": "incident 42"}
    base.update(fields)
    return Control(target=target, state=state, **base)  # type: ignore[arg-type]


def book_of(*controls: Control) -> ControlBook:
    book = ControlBook()
    for offset, c in enumerate(controls):
        book.apply(c.target, c, 0, offset)
    return book


def decided(rules: RuleSet, book: ControlBook, request: AuthorizationRequest, t: float) -> Decision:
    outcome = decide(
        request,
        rules,
        now=NOW,
        pricer=pricer,
        approval_ttl_s=600,
        controls=book.check(request, t),
    )
    assert isinstance(outcome, Decision)
    return outcome


def test_a_call_falls_under_its_system_its_agent_and_its_tool() -> None:
    assert targets_of(call()) == ["system/report", "agent/researcher", "tool/web-search"]
    assert targets_of(model_call()) == ["system/report", "agent/researcher"]


@pytest.mark.parametrize("target", ["agent/researcher", "system/report", "tool/web-search"])
def test_a_paused_target_denies_the_call_naming_the_pause(rules: RuleSet, target: str) -> None:
    outcome = decided(rules, book_of(control(target)), call(), 0.0)
    assert outcome.decision == DecisionKind.DENY
    assert (outcome.rule, outcome.policy) == ("control", target)
    kind, name = target.split("/")
    assert f"{kind} {name!r} is paused by ana at 2030-01-01T11:58:30+00:00" in outcome.reason
    assert "incident 42" in outcome.reason


def test_a_paused_agent_denies_its_model_calls_and_not_the_others(rules: RuleSet) -> None:
    book = book_of(control("agent/researcher"))
    assert decided(rules, book, model_call(), 0.0).rule == "control"
    other = decided(rules, book, model_call(agent="writer", model="mock-large"), 0.0)
    assert other.rule != "control"


def test_a_paused_tool_leaves_model_calls_and_other_tools_alone(rules: RuleSet) -> None:
    book = book_of(control("tool/send-email"))
    assert decided(rules, book, call(tool="send-email"), 0.0).rule == "control"
    assert decided(rules, book, call(), 0.0).decision == DecisionKind.ALLOW


def test_the_control_comes_before_the_rules_and_approvals(rules: RuleSet) -> None:
    """A kill switch stops what the rules would allow, and a call that carries an approval."""
    book = book_of(control("tool/wire-money"))
    outcome = decided(rules, book, call(tool="wire-money", approval_id="apr-1"), 0.0)
    assert outcome.rule == "control"


def test_resumed_or_a_tombstone_lifts_the_control(rules: RuleSet) -> None:
    book = book_of(control("agent/researcher"))
    book.apply("agent/researcher", control("agent/researcher", "resumed"), 0, 1)
    assert decided(rules, book, call(), 0.0).decision == DecisionKind.ALLOW
    book.apply("agent/researcher", control("agent/researcher"), 0, 2)
    assert decided(rules, book, call(), 0.0).rule == "control"
    book.apply("agent/researcher", None, 0, 3)
    assert decided(rules, book, call(), 0.0).decision == DecisionKind.ALLOW
    assert book.listing() == []


def test_a_throttle_admits_its_rate_then_denies_then_refills(rules: RuleSet) -> None:
    book = book_of(control("tool/web-search", "throttled", per_minute=3))
    assert [decided(rules, book, call(), 0.0).decision for _ in range(4)] == [
        DecisionKind.ALLOW,
        DecisionKind.ALLOW,
        DecisionKind.ALLOW,
        DecisionKind.DENY,
    ]
    over = decided(rules, book, call(), 0.0)
    assert over.rule == "control"
    assert "throttled to 3 calls per minute per policy replica by ana" in over.reason
    assert decided(rules, book, call(), 19.0).decision == DecisionKind.DENY  # 0.95 of a token
    assert decided(rules, book, call(), 20.5).decision == DecisionKind.ALLOW
    assert decided(rules, book, call(), 20.6).decision == DecisionKind.DENY


def test_a_throttle_replaces_a_pause_and_a_new_throttle_starts_full(rules: RuleSet) -> None:
    book = book_of(control("agent/researcher"))
    book.apply("agent/researcher", control("agent/researcher", "throttled", per_minute=1), 0, 1)
    assert decided(rules, book, call(), 0.0).decision == DecisionKind.ALLOW
    assert decided(rules, book, call(), 0.0).rule == "control"
    book.apply("agent/researcher", control("agent/researcher", "throttled", per_minute=1), 0, 2)
    assert decided(rules, book, call(), 0.0).decision == DecisionKind.ALLOW


def test_only_allowed_calls_count_against_the_rate(rules: RuleSet) -> None:
    """A call the rules deny takes a token when checked; the service gives it back."""
    book = book_of(control("agent/researcher", "throttled", per_minute=1))
    denied = call(tool="shell")  # AgentPolicy/cost-guard denies the shell
    check = book.check(denied, 0.0)
    outcome = decide(denied, rules, now=NOW, pricer=pricer, approval_ttl_s=600, controls=check)
    assert isinstance(outcome, Decision) and outcome.rule == "denied_tools"
    book.refund(check)
    assert decided(rules, book, call(), 0.0).decision == DecisionKind.ALLOW


def test_over_one_rate_gives_back_the_token_of_the_other() -> None:
    book = book_of(
        control("system/report", "throttled", per_minute=5),
        control("tool/web-search", "throttled", per_minute=1),
    )
    assert book.check(call(), 0.0).taken == ("system/report", "tool/web-search")
    over = book.check(call(), 0.0)
    assert [c.target for c in over.over_rate] == ["tool/web-search"] and over.taken == ()
    # the system's bucket lost one token (the allowed call), not two
    assert book.check(call(tool="send-email"), 0.0).taken == ("system/report",)
    assert len([book.check(call(tool="x"), 0.0) for _ in range(3)][-1].taken) == 1


def test_a_paused_target_takes_no_token() -> None:
    book = book_of(
        control("tool/web-search", "throttled", per_minute=1), control("agent/researcher")
    )
    assert book.check(call(), 0.0).taken == ()
    book.apply("agent/researcher", None, 0, 2)
    assert book.check(call(), 0.0).taken == ("tool/web-search",)


def test_the_bucket_never_holds_more_than_a_minute_of_calls() -> None:
    bucket = TokenBucket.full(2, 0.0)
    assert bucket.take(0.0) and bucket.take(0.0) and not bucket.take(0.0)
    assert bucket.take(3600.0) and bucket.take(3600.0) and not bucket.take(3600.0)
    bucket.give_back()
    bucket.give_back()
    assert bucket.tokens == 2.0
