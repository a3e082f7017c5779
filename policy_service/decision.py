"""The policy decision: a plain function of its inputs. No Kafka, no database (unit-tested alone).

`decide(request, rules, ...)` answers one `AuthorizationRequest`, checking in this order and
stopping at the first that decides:

1. the deadline: a request that arrives after it is denied (`deadline`);
2. the operators' controls (`controls.py`): a call under a paused target, or over a throttled
   target's rate, is denied (`control`, the policy naming the target, the reason who set it and
   when); the caller checked them (`ControlBook.check`) and passes the `ControlCheck` in;
3. a request that carries an approval id (a resumed step) needs that approval issued by the
   policy service (`issued`, its own record: an id written on the topic by anyone else counts for
   nothing), not expired, not used by another call, issued for this very call (task, agent, tool
   and the SHA-256 of its arguments), and granted in the book (`approval`); a granted approval
   lets the rules skip approvals, and the caller then spends it (`ApprovalStore.claim`);
4. the rules (`rules.evaluate`): deny, approval required (with a new approval id and its expiry),
   or allow;
5. an allowed model call under budget caps: its cost is estimated from the endpoint's price (an
   unknown price under a USD cap is a deny, `max_cost_per_task_usd`), and the answer depends on
   the budget reservation. Called without `reservation`, `decide` returns the `BudgetRequest` to
   reserve; called again with the store's `Reservation`, the decision (allow with what was
   reserved, or the refusing cap's deny).

The caller does the I/O: it looks the approval up in its book and its store, records a new
approval before replying, spends a used one, and makes the reservation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from policy_service.approval_book import ApprovalEntry, IssuedApproval, new_approval_id
from policy_service.controls import CONTROL_RULE, NO_CONTROLS, ControlCheck, control_refusal
from policy_service.reservation import BudgetRequest, Reservation
from policy_service.rules import RuleSet, Verdict, evaluate
from topics.messages import Action, AuthorizationRequest, Decision, DecisionKind

Pricer = Callable[[str, str, int, int, Any], float | None]
"""estimate_cost_usd(provider, model, input_tokens, output_tokens, endpoint pricing)."""


def decide(
    request: AuthorizationRequest,
    rules: RuleSet,
    *,
    now: datetime,
    pricer: Pricer,
    approval_ttl_s: float,
    approval: ApprovalEntry | None = None,
    issued: IssuedApproval | None = None,
    reservation: Reservation | None = None,
    approval_id: Callable[[], str] = new_approval_id,
    controls: ControlCheck = NO_CONTROLS,
) -> Decision | BudgetRequest:
    """The decision on `request`, or the `BudgetRequest` it waits for (see the module).

    `controls` is what the operators' controls say about the call (`ControlBook.check`);
    `approval` is the book's entry for `request.approval_id` (None when the book has none),
    `issued` the policy service's own record of it (None when it never issued it);
    `approval_id` makes the id of a new approval.
    """

    def answer(verdict: Verdict, **extra: Any) -> Decision:
        return Decision(
            request_id=request.request_id,
            task_id=request.task_id,
            decision=str(verdict.decision),
            rule=verdict.rule,
            policy=verdict.policy,
            reason=verdict.reason,
            **extra,
        )

    if request.deadline <= now:
        late = (now - request.deadline).total_seconds()
        return answer(
            Verdict(
                DecisionKind.DENY,
                "deadline",
                "",
                f"the request arrived {late:.3f} s past its deadline",
            )
        )
    controlled = control_refusal(controls)
    if controlled is not None:
        target, reason = controlled
        return answer(Verdict(DecisionKind.DENY, CONTROL_RULE, target, reason))
    approved = False
    if request.approval_id:
        refusal = _approval_refusal(request, approval, issued, now)
        if refusal is not None:
            return answer(refusal)
        approved = True
    verdict = evaluate(rules, request, approved=approved)
    if verdict.decision == DecisionKind.APPROVAL_REQUIRED:
        return answer(
            verdict,
            approval_id=approval_id(),
            approval_expires_at=now + timedelta(seconds=approval_ttl_s),
            decided_at=now,
        )
    if approved and verdict.decision == DecisionKind.ALLOW:
        by = approval.decision.decided_by if approval and approval.decision else ""
        verdict = Verdict(
            DecisionKind.ALLOW,
            verdict.rule,
            verdict.policy,
            f"approved by {by or 'a person'} (approval {request.approval_id}, single use)",
        )
    if verdict.decision != DecisionKind.ALLOW or request.action != Action.MODEL_CALL:
        return answer(verdict)
    if not verdict.caps:
        return answer(verdict)
    usd = estimate_usd(rules, request, pricer)
    if usd is None:
        capped = next((c for c in verdict.caps if c.max_usd is not None), None)
        if capped is not None:
            return answer(
                Verdict(
                    DecisionKind.DENY,
                    "max_cost_per_task_usd",
                    f"AgentPolicy/{capped.policy}",
                    f"the price of model {request.model!r} is unknown, so the USD budget "
                    "cannot be enforced; add `pricing` to its ModelEndpoint",
                )
            )
        usd = 0.0
    if reservation is None:
        return BudgetRequest(
            request_id=request.request_id,
            task_id=request.task_id,
            caps=verdict.caps,
            tokens=request.estimated_tokens,
            usd=usd,
        )
    if not reservation.ok:
        assert reservation.cap is not None
        return answer(
            Verdict(
                DecisionKind.DENY,
                reservation.rule,
                f"AgentPolicy/{reservation.cap.policy}",
                reservation.reason,
            )
        )
    return answer(verdict, reserved_tokens=request.estimated_tokens, reserved_usd=usd)


def _approval_refusal(
    request: AuthorizationRequest,
    entry: ApprovalEntry | None,
    issued: IssuedApproval | None,
    now: datetime,
) -> Verdict | None:
    """None when the call's approval was issued for it, is unused, unexpired and granted; else
    the deny verdict."""
    approval_id = request.approval_id or ""

    def deny(reason: str) -> Verdict:
        return Verdict(DecisionKind.DENY, "approval", "", reason)

    if issued is None:
        return deny(f"approval {approval_id!r} was not issued by the policy service")
    if (issued.task_id, issued.system, issued.agent, issued.tool) != (
        request.task_id,
        request.system,
        request.agent,
        request.tool or "",
    ) or request.action != Action.TOOL_CALL:
        return deny(f"approval {approval_id!r} was issued for another call")
    if issued.arguments_digest != request.arguments_digest:
        return deny(f"approval {approval_id!r} was issued for other arguments")
    if issued.used_by is not None and issued.used_by != request.request_id:
        return deny(f"approval {approval_id!r} was used already (by request {issued.used_by})")
    if issued.expires_at <= now:
        return deny(f"approval {approval_id!r} expired at {issued.expires_at.isoformat()}")
    if entry is None:
        return deny(f"approval {approval_id!r} is unknown")
    if entry.status != "granted":
        by = entry.decision.decided_by if entry.decision else ""
        return deny(f"approval {approval_id!r} is {entry.status}" + (f" ({by})" if by else ""))
    return None


def estimate_usd(rules: RuleSet, request: AuthorizationRequest, pricer: Pricer) -> float | None:
    """Upper bound of the call's cost: every estimated token priced as an output token; None
    when the endpoint is unknown or has no price for the model."""
    if request.estimated_tokens == 0:
        return 0.0
    agent = rules.agents.get(request.agent)
    endpoint_name = request.endpoint or (agent.endpoint if agent else "")
    endpoint = rules.endpoints.get(endpoint_name)
    if endpoint is None:
        return None
    return pricer(
        endpoint.provider, request.model or "", 0, request.estimated_tokens, endpoint.pricing
    )
