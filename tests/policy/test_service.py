"""The policy service on the real stack, driven through `Authorizer` as the actors drive it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from policy_service.approvals import (
    ApprovalAlreadyDecided,
    ApprovalNotFound,
    decide_approval,
    list_approvals,
)
from policy_service.client import FAIL_CLOSED_RULE, Authorizer, is_allowed
from tests.faults.cluster import read_topic
from tests.helpers import approver_for, consume_decoded, wait_until
from tests.policy.conftest import VERIFY_KEYS, PolicyHarness, policy_settings
from topics.codec import (
    HEADER_CORRELATION_ID,
    HEADER_REPLY_TO,
    decode,
    encode,
    header,
    headers_for,
)
from topics.kafka import make_consumer, make_producer
from topics.messages import (
    Action,
    ApprovalRequest,
    ApprovalResume,
    AuthorizationRequest,
    DeadLetter,
    Decision,
    Event,
    EventType,
    ModelCalledData,
    Step,
    event,
    utcnow,
)

pytestmark = pytest.mark.integration


def task() -> str:
    return f"task-{uuid.uuid4().hex[:10]}"


async def model_call(authorizer: Authorizer, task_id: str, **fields: Any) -> Any:
    call: dict[str, Any] = {
        "task_id": task_id,
        "system": "report",
        "agent": "researcher",
        "step_id": "s1",
        "action": Action.MODEL_CALL,
        "model": "mock-small",
        "endpoint": "local",
        "estimated_tokens": 100,
    }
    call.update(fields)
    return await authorizer.authorize(**call)


async def tool_call(authorizer: Authorizer, task_id: str, tool: str, **fields: Any) -> Any:
    call: dict[str, Any] = {
        "task_id": task_id,
        "system": "report",
        "agent": "researcher",
        "step_id": "s1",
        "action": Action.TOOL_CALL,
        "tool": tool,
        "arguments": {"to": "someone"},
    }
    call.update(fields)
    return await authorizer.authorize(**call)


async def test_rules_deny_and_allow_and_every_decision_is_an_event(
    harness: PolicyHarness,
) -> None:
    await harness.start_service()
    authorizer = await harness.authorizer()
    t = task()

    allowed = await model_call(authorizer, t)
    assert is_allowed(allowed), allowed
    assert allowed.reserved_tokens == 100

    wrong_model = await model_call(authorizer, t, model="mock-large")
    assert (wrong_model.decision, wrong_model.rule, wrong_model.policy) == (
        "deny",
        "allowed_models",
        "AgentPolicy/cost-guard",
    )
    denied_tool = await tool_call(authorizer, t, "shell")
    assert (denied_tool.decision, denied_tool.rule) == ("deny", "denied_tools")
    not_permitted = await tool_call(authorizer, t, "send-email", agent="writer")
    assert (not_permitted.decision, not_permitted.policy) == (
        "deny",
        "ToolPermission/email-policy",
    )
    unknown = await model_call(authorizer, t, agent="ghost")
    assert (unknown.decision, unknown.rule) == ("deny", "unknown_agent")

    # Every decision is one event, written by the policy service alone (before it answered).
    await consume_decoded(harness.kafka, harness.names.events, 5, Event)
    events = [decode(r.value, Event) for r in await read_topic(harness.kafka, harness.names.events)]
    decided = [e for e in events if e.type == EventType.POLICY_DECIDED and e.task_id == t]
    assert sorted(e.data["decision"] for e in decided) == ["allow", "deny", "deny", "deny", "deny"]
    assert len({e.event_id for e in decided}) == len(decided) == 5
    assert {e.source for e in decided} == {"policy"}


async def test_token_budget_stops_the_call_that_would_cross_it_even_when_branches_race(
    harness: PolicyHarness,
) -> None:
    await harness.start_service()
    authorizer = await harness.authorizer()
    t = task()
    # cost-guard caps the task at 1000 tokens: five branches of 300 race, three fit.
    decisions = await asyncio.gather(
        *(
            model_call(authorizer, t, agent="writer", estimated_tokens=300, step_id=f"b{i}")
            for i in range(5)
        )
    )
    allowed = [d for d in decisions if is_allowed(d)]
    assert sum(d.reserved_tokens for d in allowed) <= 1000
    assert len(allowed) == 3, decisions
    refused = [d for d in decisions if not is_allowed(d)]
    assert {(d.rule, d.policy) for d in refused} == {
        ("max_tokens_per_task", "AgentPolicy/cost-guard")
    }

    # Settlement by the actual usage frees what the reservations did not use.
    producer = make_producer(harness.kafka)
    try:
        await producer.start()
        for d in allowed:
            usage = event(
                ModelCalledData(
                    request_id=d.request_id,
                    provider="mock",
                    endpoint="local",
                    call_index=0,
                    model="mock-small",
                    input_tokens=50,
                    output_tokens=50,
                    cost_usd=0.0001,
                ),
                event_id=f"usage-{d.request_id}",
                task_id=t,
            )
            await producer.send_and_wait(
                harness.names.events,
                key=t.encode(),
                value=encode(usage),
                headers=headers_for(usage),
            )
    finally:
        await producer.stop()

    async def fits_again() -> bool:
        return is_allowed(await model_call(authorizer, t, agent="writer", estimated_tokens=500))

    # 3 x 100 used after settlement: a call of 500 fits (it did not before: 900 reserved).
    await wait_until(fits_again, timeout=30, interval=0.2)


async def test_usd_budget_is_reserved_from_the_model_price(harness: PolicyHarness) -> None:
    await harness.start_service()
    authorizer = await harness.authorizer()
    t = task()
    # usd-guard: $1 per task; 200 tokens priced at $2000/M output = $0.40 each -> two fit.
    decisions = await asyncio.gather(
        *(model_call(authorizer, t, estimated_tokens=200, step_id=f"b{i}") for i in range(4))
    )
    allowed = [d for d in decisions if is_allowed(d)]
    assert len(allowed) == 2
    assert sum(d.reserved_usd for d in allowed) <= 1.0
    assert {d.rule for d in decisions if not is_allowed(d)} == {"max_cost_per_task_usd"}


async def test_service_stopped_means_deny_within_the_deadline(harness: PolicyHarness) -> None:
    authorizer = await harness.authorizer(timeout_s=1.0)
    decision = await model_call(authorizer, task())
    assert not is_allowed(decision)
    assert decision.rule == FAIL_CLOSED_RULE
    assert "no decision" in decision.reason


async def test_forged_reply_is_a_deny(harness: PolicyHarness) -> None:
    """A fake replier answers every request with an unsigned-by-us `allow`."""
    consumer = make_consumer(
        harness.kafka,
        harness.names.policy_requests,
        group_id=f"forger-{uuid.uuid4().hex[:6]}",
        fetch_max_wait_ms=10,
    )
    producer = make_producer(harness.kafka)
    await consumer.start()
    await producer.start()

    async def forge() -> None:
        async for record in consumer:
            request: AuthorizationRequest = decode(record.value, AuthorizationRequest)
            forged = Decision(
                request_id=request.request_id,
                task_id=request.task_id,
                decision="allow",
                signature="00" * 32,
            )
            await producer.send_and_wait(
                header(record.headers, HEADER_REPLY_TO) or request.reply_to,
                value=encode(forged),
                headers=[
                    (
                        HEADER_CORRELATION_ID,
                        (header(record.headers, HEADER_CORRELATION_ID) or "").encode(),
                    )
                ],
            )

    forger = asyncio.create_task(forge())
    try:
        authorizer = await harness.authorizer(timeout_s=20.0)
        decision = await model_call(authorizer, task())
        assert not is_allowed(decision)
        assert decision.rule == FAIL_CLOSED_RULE
        assert "signature" in decision.reason
    finally:
        forger.cancel()
        await asyncio.gather(forger, return_exceptions=True)
        await consumer.stop()
        await producer.stop()


async def test_malformed_request_goes_to_the_dlq_and_the_service_goes_on(
    harness: PolicyHarness,
) -> None:
    await harness.start_service()
    producer = make_producer(harness.kafka)
    try:
        await producer.start()
        await producer.send_and_wait(
            harness.names.policy_requests, key=b"bad-task", value=b'{"request_id": 42}'
        )
    finally:
        await producer.stop()
    letters = await consume_decoded(harness.kafka, harness.names.policy_requests_dlq, 1, DeadLetter)
    assert letters[0].service == "policy"
    assert letters[0].value == b'{"request_id": 42}'
    assert "request_id" in letters[0].reason
    authorizer = await harness.authorizer()
    assert is_allowed(await model_call(authorizer, task()))


def parked(decision: Decision, t: str, *, expires_in_s: float = 3600) -> ApprovalRequest:
    request = AuthorizationRequest(
        request_id=decision.request_id,
        task_id=t,
        system="report",
        agent="researcher",
        step_id="s1",
        action=Action.TOOL_CALL,
        tool="wire-money",
        reply_to="unused",
        deadline=utcnow(),
    )
    step = Step(
        task_id=t,
        system="report",
        agent="researcher",
        step_id="s1",
        task_input="pay the invoice",
        resume=ApprovalResume(
            conversation={"messages": [{"role": "user", "content": "pay"}]}, tool_call_id="c1"
        ),
    )
    assert decision.approval_id is not None
    return ApprovalRequest(
        approval_id=decision.approval_id,
        task_id=t,
        system="report",
        agent="researcher",
        step=step,
        request=request,
        arguments={"amount": 10},
        reason="the invoice is due",
        expires_at=utcnow() + timedelta(seconds=expires_in_s),
    )


async def park(harness: PolicyHarness, approval: ApprovalRequest) -> None:
    """What the actor does: write the parked step to the approvals topic."""
    producer = make_producer(harness.kafka)
    try:
        await producer.start()
        await producer.send_and_wait(
            harness.names.approvals,
            key=approval.task_id.encode(),
            value=encode(approval),
            headers=headers_for(approval),
        )
    finally:
        await producer.stop()


async def test_approval_survives_a_full_restart_and_resumes_the_step(
    harness: PolicyHarness,
) -> None:
    first = await harness.start_service()
    authorizer = await harness.authorizer()
    t = task()
    asked = await tool_call(authorizer, t, "wire-money")
    assert (asked.decision, asked.policy) == (
        "approval_required",
        "ToolPermission/money-needs-a-human",
    )
    assert asked.approval_id
    await park(harness, parked(asked, t))
    await first.shutdown()  # every process of the policy service is gone

    approver = approver_for(VERIFY_KEYS)
    pending = await list_approvals(harness.kafka, harness.names, approver.trusted)
    assert [e.request.approval_id for e in pending] == [asked.approval_id]
    decision = await decide_approval(
        harness.kafka,
        harness.names,
        asked.approval_id,
        signer=approver.signer,
        trusted=approver.trusted,
        granted=True,
        decided_by="alice",
        reason="invoice checked",
    )
    assert (decision.decision, decision.decided_by) == ("granted", "alice")
    with pytest.raises(ApprovalAlreadyDecided, match="already granted by alice"):
        await decide_approval(
            harness.kafka,
            harness.names,
            asked.approval_id,
            signer=approver.signer,
            trusted=approver.trusted,
            granted=False,
            decided_by="bob",
        )
    with pytest.raises(ApprovalNotFound):
        await decide_approval(
            harness.kafka,
            harness.names,
            "apr-nope",
            signer=approver.signer,
            trusted=approver.trusted,
            granted=True,
            decided_by="x",
        )

    await harness.start_service()  # a fresh replica, nothing in memory: it resumes the step
    steps = await consume_decoded(harness.kafka, harness.names.agent("researcher"), 1, Step)
    resume = steps[0].resume
    assert isinstance(resume, ApprovalResume) and resume.approval is not None
    assert (resume.approval.decision, resume.approval.decided_by) == ("granted", "alice")
    assert resume.conversation == {"messages": [{"role": "user", "content": "pay"}]}
    assert resume.tool_call_id == "c1"
    other_arguments = await tool_call(
        authorizer, t, "wire-money", approval_id=asked.approval_id, arguments={"to": "mallory"}
    )
    assert (other_arguments.decision, other_arguments.rule) == ("deny", "approval")
    assert "other arguments" in other_arguments.reason
    resumed = await tool_call(authorizer, t, "wire-money", approval_id=asked.approval_id)
    assert is_allowed(resumed), resumed
    assert "approved by alice" in resumed.reason
    elsewhere = await tool_call(authorizer, task(), "wire-money", approval_id=asked.approval_id)
    assert (elsewhere.decision, elsewhere.rule) == ("deny", "approval")
    twice = await tool_call(authorizer, t, "wire-money", approval_id=asked.approval_id)
    assert (twice.decision, twice.rule) == ("deny", "approval")
    assert "used already" in twice.reason


async def test_expired_approval_denies(harness: PolicyHarness) -> None:
    await harness.start_service(settings=policy_settings(approval_ttl_s=1.0, expiry_interval_s=0.2))
    authorizer = await harness.authorizer()
    t = task()
    asked = await tool_call(authorizer, t, "wire-money")
    assert asked.approval_id
    # The policy decides when the approval expires (its TTL), and signs it.
    assert asked.approval_expires_at is not None
    assert asked.approval_expires_at - asked.decided_at == timedelta(seconds=1.0)
    await park(harness, parked(asked, t))

    steps = await consume_decoded(
        harness.kafka, harness.names.agent("researcher"), 1, Step, timeout=30
    )
    resume = steps[0].resume
    assert isinstance(resume, ApprovalResume) and resume.approval is not None
    assert resume.approval.decision == "expired"
    resumed = await tool_call(authorizer, t, "wire-money", approval_id=asked.approval_id)
    assert (resumed.decision, resumed.rule) == ("deny", "approval")
    assert "expired" in resumed.reason
    events = await consume_decoded(harness.kafka, harness.names.events, 2, Event)
    assert any(e.type == EventType.APPROVAL_EXPIRED for e in events)
