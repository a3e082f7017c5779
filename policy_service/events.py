"""The `policy.decided` event of a decision, built the same way wherever it is written.

The policy service alone writes it, for every decision, and waits for Kafka's ack before it sends
the reply: a call runs only on an `allow` that is already recorded, and each decision appears
once in the events (a request decided again after a restart of the service keeps its
deterministic `event_id`, which the ledger stores once).

The `event_id` is made of the request id and the digest of the whole request (`request_digest`):
two different requests under one request id (a substituted or replayed-and-altered request) are
two decisions, and the ledger records both.
"""

from __future__ import annotations

from policy_service.signing import request_digest
from topics.messages import (
    AuthorizationRequest,
    Decision,
    Event,
    PolicyDecidedData,
    event,
    event_id_of,
)


def decision_event(request: AuthorizationRequest, decision: Decision) -> Event:
    return event(
        PolicyDecidedData(
            request_id=request.request_id,
            action=str(request.action),
            model=request.model,
            tool=request.tool,
            decision=decision.decision,
            rule=decision.rule,
            policy=decision.policy,
            reason=decision.reason,
            reserved_tokens=decision.reserved_tokens,
            reserved_usd=decision.reserved_usd,
        ),
        event_id=event_id_of("policy", request.request_id, request_digest(request)[:32]),
        task_id=request.task_id,
        system=request.system,
        agent=request.agent,
        step_id=request.step_id,
        source="policy",
        at=decision.decided_at,
    )
