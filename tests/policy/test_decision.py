"""The policy decision alone (`decision.decide`): every branch, no Kafka, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy_service.approval_book import ApprovalEntry, IssuedApproval
from policy_service.decision import decide, estimate_usd
from policy_service.reservation import BudgetRequest, Reservation, refusal
from policy_service.rules import BudgetCap, RuleSet
from tests.policy.manifests_fixture import pricer, rule_set
from topics.messages import (
    Action,
    ApprovalDecision,
    ApprovalRequest,
    AuthorizationRequest,
    Decision,
    Step,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TTL_S = 600.0
COST_GUARD = BudgetCap(policy="cost-guard", max_tokens=1000, max_usd=None)
USD_GUARD = BudgetCap(policy="usd-guard", max_tokens=None, max_usd=1.0)

TOKENS_ONLY_YAML = """
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: local}
spec: {provider: mock, default_model: mock-small}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: solo}
spec: {prompt: p, model: {endpoint: local, model: mock-small}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: alone}
spec: {agents: [solo]}
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {name: tokens-only}
spec: {scope: {system: alone}, max_tokens_per_task: 500}
"""


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return rule_set()


def request(**fields: Any) -> AuthorizationRequest:
    base: dict[str, Any] = {
        "request_id": "r1",
        "task_id": "t1",
        "system": "report",
        "agent": "researcher",
        "step_id": "s1",
        "action": Action.MODEL_CALL,
        "model": "mock-small",
        "endpoint": "local",
        "estimated_tokens": 100,
        "reply_to": "replies",
        "deadline": NOW + timedelta(seconds=5),
    }
    base.update(fields)
    return AuthorizationRequest(**base)


def money(**fields: Any) -> AuthorizationRequest:
    """The tool call that needs a person's approval (ToolPermission/money-needs-a-human)."""
    call: dict[str, Any] = {"action": Action.TOOL_CALL, "tool": "wire-money", "model": None}
    call.update(fields)
    return request(**call)


def entry(
    status: str | None, *, call: AuthorizationRequest | None = None, by: str = "alice"
) -> ApprovalEntry:
    """The book's entry of approval `apr-1`, parked for `call` (default: `money()`), decided
    `status` (None: still pending)."""
    parked_call = call or money()
    approval = ApprovalRequest(
        approval_id="apr-1",
        task_id=parked_call.task_id,
        system=parked_call.system,
        agent=parked_call.agent,
        step=Step(
            task_id=parked_call.task_id,
            system=parked_call.system,
            agent=parked_call.agent,
            step_id="s1",
            task_input="pay the invoice",
        ),
        request=parked_call,
        requested_at=NOW - timedelta(minutes=1),
        expires_at=NOW + timedelta(minutes=9),
    )
    decision = (
        None
        if status is None
        else ApprovalDecision(
            approval_id="apr-1",
            task_id=parked_call.task_id,
            decision=status,  # type: ignore[arg-type]
            decided_by=by,
            decided_at=NOW,
        )
    )
    return ApprovalEntry(approval, partition=0, decision=decision)


def issued_for(call: AuthorizationRequest | None = None, **fields: Any) -> IssuedApproval:
    """The policy service's record of approval `apr-1`, issued for `call` (default: `money()`)."""
    parked_call = call or money()
    base: dict[str, Any] = {
        "approval_id": "apr-1",
        "task_id": parked_call.task_id,
        "system": parked_call.system,
        "agent": parked_call.agent,
        "tool": parked_call.tool or "",
        "arguments_digest": parked_call.arguments_digest,
        "issued_for": "r0",
        "expires_at": NOW + timedelta(minutes=9),
    }
    base.update(fields)
    return IssuedApproval(**base)


def decided(
    rules: RuleSet,
    call: AuthorizationRequest,
    *,
    approval: ApprovalEntry | None = None,
    issued: IssuedApproval | None = None,
    reservation: Reservation | None = None,
    prices: Any = pricer,
) -> Decision:
    outcome = decide(
        call,
        rules,
        now=NOW,
        pricer=prices,
        approval_ttl_s=TTL_S,
        approval=approval,
        issued=issued,
        reservation=reservation,
        approval_id=lambda: "apr-new",
    )
    assert isinstance(outcome, Decision), outcome
    return outcome


def wanted(rules: RuleSet, call: AuthorizationRequest, *, prices: Any = pricer) -> BudgetRequest:
    outcome = decide(call, rules, now=NOW, pricer=prices, approval_ttl_s=TTL_S)
    assert isinstance(outcome, BudgetRequest), outcome
    return outcome


def verdict_of(decision: Decision) -> tuple[str, str, str]:
    return decision.decision, decision.rule, decision.policy


# --- allowed ---------------------------------------------------------------------------------


def test_allowed_model_call_under_budgets_asks_for_a_reservation_first(rules: RuleSet) -> None:
    budget = wanted(rules, request())
    # researcher is under cost-guard (tokens) and usd-guard (USD); every token is priced as
    # an output token of the endpoint's `pricing` (2000 USD per million).
    assert budget == BudgetRequest(
        request_id="r1",
        task_id="t1",
        caps=(COST_GUARD, USD_GUARD),
        tokens=100,
        usd=pytest.approx(0.2),  # type: ignore[arg-type]
    )


def test_allowed_model_call_with_its_reservation_made(rules: RuleSet) -> None:
    decision = decided(rules, request(), reservation=Reservation(ok=True))
    assert verdict_of(decision) == ("allow", "allow", "")
    assert decision.reserved_tokens == 100
    assert decision.reserved_usd == pytest.approx(0.2)
    assert (decision.request_id, decision.task_id) == ("r1", "t1")
    assert decision.approval_id is None and decision.approval_expires_at is None


def test_allowed_model_call_without_any_budget_needs_no_reservation(rules: RuleSet) -> None:
    # The same system without its AgentPolicy manifests: no cap, nothing to reserve.
    bare = RuleSet(systems=rules.systems, agents=rules.agents, endpoints=rules.endpoints)
    decision = decided(bare, request())
    assert verdict_of(decision) == ("allow", "allow", "")
    assert (decision.reserved_tokens, decision.reserved_usd) == (0, 0.0)


def test_allowed_tool_call(rules: RuleSet) -> None:
    decision = decided(rules, request(action=Action.TOOL_CALL, tool="web-search", model=None))
    assert verdict_of(decision) == ("allow", "allow", "")
    assert decision.reason == "no rule denies this tool call"
    assert decision.reserved_tokens == 0


# --- denied by the rules ---------------------------------------------------------------------


def test_denied_by_a_rule(rules: RuleSet) -> None:
    decision = decided(rules, request(model="mock-large"))
    assert verdict_of(decision) == ("deny", "allowed_models", "AgentPolicy/cost-guard")
    assert "mock-large" in decision.reason
    assert decision.reserved_tokens == 0


def test_denied_tool(rules: RuleSet) -> None:
    decision = decided(rules, request(action=Action.TOOL_CALL, tool="shell", model=None))
    assert verdict_of(decision) == ("deny", "denied_tools", "AgentPolicy/cost-guard")


def test_tool_not_permitted(rules: RuleSet) -> None:
    call = request(agent="writer", action=Action.TOOL_CALL, tool="send-email", model=None)
    assert verdict_of(decided(rules, call)) == (
        "deny",
        "tool_permission",
        "ToolPermission/email-policy",
    )


def test_tool_not_among_the_agents_tools(rules: RuleSet) -> None:
    call = request(agent="writer", action=Action.TOOL_CALL, tool="wire-money", model=None)
    assert verdict_of(decided(rules, call)) == ("deny", "role_permissions", "AgentRole/editor")


DELEGATING_YAML = """
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: local}
spec: {provider: mock, default_model: mock-small}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: boss}
spec: {prompt: p, model: {endpoint: local, model: mock-small}}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: helper}
spec: {prompt: p, model: {endpoint: local, model: mock-small}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: team}
spec: {agents: [boss, helper], graph: {boss: {delegates_to: [helper]}}}
"""


def delegation(**fields: Any) -> AuthorizationRequest:
    call: dict[str, Any] = {
        "system": "team",
        "agent": "boss",
        "action": Action.TOOL_CALL,
        "tool": "delegate",
        "model": None,
    }
    call.update(fields)
    return request(**call)


def test_delegation_is_a_tool_call_the_rules_decide() -> None:
    assert verdict_of(decided(rule_set(DELEGATING_YAML), delegation())) == ("allow", "allow", "")
    blocked = rule_set(
        DELEGATING_YAML
        + "---\napiVersion: orloj.dev/v1\nkind: AgentPolicy\nmetadata: {name: no-delegation}\n"
        "spec: {target_systems: [team], blocked_tools: [delegate]}\n"
    )
    assert verdict_of(decided(blocked, delegation())) == (
        "deny",
        "denied_tools",
        "AgentPolicy/no-delegation",
    )


def test_unknown_system_and_agent(rules: RuleSet) -> None:
    assert decided(rules, request(system="nope")).rule == "unknown_system"
    assert decided(rules, request(agent="ghost")).rule == "unknown_agent"


def test_step_limit(rules: RuleSet) -> None:
    assert verdict_of(decided(rules, request(step_number=4))) == (
        "deny",
        "max_steps",
        "Agent/researcher",
    )


def test_request_past_its_deadline(rules: RuleSet) -> None:
    decision = decided(rules, request(deadline=NOW - timedelta(seconds=1.5)))
    assert verdict_of(decision) == ("deny", "deadline", "")
    assert decision.reason == "the request arrived 1.500 s past its deadline"
    # A deadline of exactly now is already too late.
    assert decided(rules, request(deadline=NOW)).rule == "deadline"


def test_the_deadline_comes_before_everything_else(rules: RuleSet) -> None:
    late = money(approval_id="apr-1", deadline=NOW)
    assert decided(rules, late, approval=None).rule == "deadline"


# --- budgets ---------------------------------------------------------------------------------


def test_budget_exhausted(rules: RuleSet) -> None:
    refused = refusal(COST_GUARD, used_tokens=950, used_usd=0.0, tokens=100, usd=0.2)
    decision = decided(rules, request(), reservation=refused)
    assert verdict_of(decision) == ("deny", "max_tokens_per_task", "AgentPolicy/cost-guard")
    assert decision.reason == "the task has used 950 of its 1000 tokens; this call may use 100 more"
    assert (decision.reserved_tokens, decision.reserved_usd) == (0, 0.0)


def test_usd_budget_exhausted(rules: RuleSet) -> None:
    refused = refusal(USD_GUARD, used_tokens=0, used_usd=0.9, tokens=100, usd=0.2)
    decision = decided(rules, request(), reservation=refused)
    assert verdict_of(decision) == ("deny", "max_cost_per_task_usd", "AgentPolicy/usd-guard")
    assert "$0.900000 of its $1.0 budget" in decision.reason


def test_unknown_model_price_under_a_usd_budget_is_a_deny(rules: RuleSet) -> None:
    decision = decided(rules, request(), prices=lambda *_: None)
    assert verdict_of(decision) == ("deny", "max_cost_per_task_usd", "AgentPolicy/usd-guard")
    assert "price of model 'mock-small' is unknown" in decision.reason


def test_unknown_endpoint_under_a_usd_budget_is_a_deny(rules: RuleSet) -> None:
    decision = decided(rules, request(endpoint="elsewhere"))
    assert verdict_of(decision) == ("deny", "max_cost_per_task_usd", "AgentPolicy/usd-guard")


def test_unknown_model_price_under_a_token_budget_reserves_tokens_and_no_usd() -> None:
    rules = rule_set(TOKENS_ONLY_YAML)
    call = request(system="alone", agent="solo", endpoint=None)
    budget = wanted(rules, call, prices=lambda *_: None)
    assert (budget.caps, budget.tokens, budget.usd) == (
        (BudgetCap(policy="tokens-only", max_tokens=500, max_usd=None),),
        100,
        0.0,
    )
    decision = decided(rules, call, reservation=Reservation(ok=True), prices=lambda *_: None)
    assert verdict_of(decision) == ("allow", "allow", "")
    assert (decision.reserved_tokens, decision.reserved_usd) == (100, 0.0)


def test_a_call_estimated_at_no_tokens_costs_nothing(rules: RuleSet) -> None:
    budget = wanted(rules, request(estimated_tokens=0), prices=lambda *_: None)
    assert (budget.tokens, budget.usd) == (0, 0.0)


def test_cost_estimate_uses_the_agents_endpoint_when_the_call_names_none(rules: RuleSet) -> None:
    seen: list[tuple[Any, ...]] = []

    def recording(*args: Any) -> float:
        seen.append(args)
        return 0.5

    assert estimate_usd(rules, request(endpoint=None, estimated_tokens=10), recording) == 0.5
    provider, model, input_tokens, output_tokens, pricing = seen[0]
    assert (provider, model, input_tokens, output_tokens) == ("mock", "mock-small", 0, 10)
    assert pricing is not None


# --- approvals -------------------------------------------------------------------------------


def test_approval_required(rules: RuleSet) -> None:
    decision = decided(rules, money())
    assert verdict_of(decision) == (
        "approval_required",
        "approval_required",
        "ToolPermission/money-needs-a-human",
    )
    assert decision.approval_id == "apr-new"
    assert decision.decided_at == NOW
    assert decision.approval_expires_at == NOW + timedelta(seconds=TTL_S)


def test_approval_granted(rules: RuleSet) -> None:
    decision = decided(
        rules, money(approval_id="apr-1"), approval=entry("granted"), issued=issued_for()
    )
    assert verdict_of(decision) == ("allow", "allow", "")
    assert decision.reason == "approved by alice (approval apr-1, single use)"
    assert decision.approval_id is None


def test_approval_denied(rules: RuleSet) -> None:
    decision = decided(
        rules, money(approval_id="apr-1"), approval=entry("denied", by="bob"), issued=issued_for()
    )
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' is denied (bob)"


def test_approval_expired(rules: RuleSet) -> None:
    expired = entry("expired", by="policy-service")
    decision = decided(rules, money(approval_id="apr-1"), approval=expired, issued=issued_for())
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' is expired (policy-service)"


def test_approval_still_pending(rules: RuleSet) -> None:
    decision = decided(rules, money(approval_id="apr-1"), approval=entry(None), issued=issued_for())
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' is pending"


def test_approval_unknown(rules: RuleSet) -> None:
    decision = decided(rules, money(approval_id="apr-1"), approval=None, issued=issued_for())
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' is unknown"


def test_an_approval_the_policy_service_did_not_issue_counts_for_nothing(rules: RuleSet) -> None:
    """Granted on the topic (anyone can write there), but never issued by the service."""
    decision = decided(rules, money(approval_id="apr-1"), approval=entry("granted"), issued=None)
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' was not issued by the policy service"


def test_an_approval_is_bound_to_the_arguments_it_was_issued_for(rules: RuleSet) -> None:
    call = money(approval_id="apr-1", arguments_digest="b" * 64)
    issued = issued_for(money(arguments_digest="a" * 64))
    decision = decided(rules, call, approval=entry("granted"), issued=issued)
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' was issued for other arguments"


def test_an_approval_is_used_once(rules: RuleSet) -> None:
    used = issued_for(used_by="r-first")
    again = decided(rules, money(approval_id="apr-1"), approval=entry("granted"), issued=used)
    assert verdict_of(again) == ("deny", "approval", "")
    assert again.reason == "approval 'apr-1' was used already (by request r-first)"
    # the same request, redelivered, is the same use
    same = decided(
        rules,
        money(approval_id="apr-1", request_id="r-first"),
        approval=entry("granted"),
        issued=used,
    )
    assert verdict_of(same) == ("allow", "allow", "")


def test_an_approval_past_its_expiry_denies_even_when_granted(rules: RuleSet) -> None:
    late = issued_for(expires_at=NOW - timedelta(seconds=1))
    decision = decided(rules, money(approval_id="apr-1"), approval=entry("granted"), issued=late)
    assert verdict_of(decision) == ("deny", "approval", "")
    assert "expired at" in decision.reason


@pytest.mark.parametrize(
    "other",
    [
        {"task_id": "t2"},
        {"tool": "send-email"},
        {"action": Action.MODEL_CALL, "tool": None, "model": "mock-small"},
    ],
    ids=["another-task", "another-tool", "another-action"],
)
def test_approval_granted_for_another_call(rules: RuleSet, other: dict[str, Any]) -> None:
    call = money(approval_id="apr-1", **other)
    decision = decided(rules, call, approval=entry("granted"), issued=issued_for())
    assert verdict_of(decision) == ("deny", "approval", "")
    assert decision.reason == "approval 'apr-1' was issued for another call"


def test_a_granted_approval_does_not_lift_a_deny(rules: RuleSet) -> None:
    shell = money(tool="shell", approval_id="apr-1")
    decision = decided(
        rules,
        shell,
        approval=entry("granted", call=money(tool="shell")),
        issued=issued_for(money(tool="shell")),
    )
    assert verdict_of(decision) == ("deny", "denied_tools", "AgentPolicy/cost-guard")
