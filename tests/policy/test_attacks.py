"""Attacks on the decision path, tried as someone with network access to Kafka would try them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from actors.settings import ActorSettings
from podium import composition
from podium.core.settings import KafkaSettings
from policy_service.approval_signing import sign_decision as sign_approval
from policy_service.approvals import decide_approval, list_approvals
from policy_service.client import FAIL_CLOSED_RULE, Authorizer, is_allowed
from policy_service.keys import generate, parse_signing_key
from policy_service.settings import PolicySettings
from policy_service.signing import request_digest, sign_decision
from tests.faults.cluster import read_topic
from tests.helpers import approver_for, consume_decoded, wait_until
from tests.policy.conftest import PUBLIC_KEYS, SIGNER, VERIFY_KEYS, PolicyHarness, policy_settings
from tests.policy.test_service import model_call, park, parked, task, tool_call
from topics.codec import HEADER_CORRELATION_ID, HEADER_REPLY_TO, decode, encode, header
from topics.kafka import ensure_topics, make_admin, make_consumer, make_producer
from topics.messages import (
    Action,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalResume,
    AuthorizationRequest,
    DeadLetter,
    Decision,
    Event,
    EventType,
    Step,
    utcnow,
)
from topics.names import TopicNames
from topics.request_reply import RequestReplyClient

pytestmark = pytest.mark.integration


@asynccontextmanager
async def bus(
    harness: PolicyHarness, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer]]:
    """A plain consumer of `topic` and a plain producer: all an attacker needs."""
    consumer = make_consumer(
        harness.kafka, topic, group_id=f"attacker-{uuid.uuid4().hex[:6]}", fetch_max_wait_ms=10
    )
    producer = make_producer(harness.kafka)
    await consumer.start()
    await producer.start()
    try:
        yield consumer, producer
    finally:
        await consumer.stop()
        await producer.stop()


async def test_a_process_holding_the_actors_keys_cannot_mint_an_allow(
    harness: PolicyHarness,
) -> None:
    """The policy service is down; a process with everything an actor holds answers requests.

    An actor holds the public keys only (it is built from them alone); the best such a process
    can do is sign with a key of its own under the service's key id."""
    actor_settings = PolicySettings(verify_keys=VERIFY_KEYS)
    composition.ActorRole(
        KafkaSettings(bootstrap="127.0.0.1:9"), ["researcher"], ActorSettings(), actor_settings
    )
    own_key = parse_signing_key(generate(SIGNER.key_id)[0])
    async with bus(harness, harness.names.policy_requests) as (consumer, producer):

        async def mint() -> None:
            async for record in consumer:
                request: AuthorizationRequest = decode(record.value, AuthorizationRequest)
                allow = Decision(
                    request_id=request.request_id, task_id=request.task_id, decision="allow"
                )
                forged = sign_decision(allow, own_key, request_digest=request_digest(request))
                await producer.send_and_wait(
                    request.reply_to,
                    value=encode(forged),
                    headers=[(HEADER_CORRELATION_ID, request.request_id.encode())],
                )

        minter = asyncio.create_task(mint())
        try:
            authorizer = await harness.authorizer(timeout_s=20.0)
            decision = await tool_call(authorizer, task(), "shell")
        finally:
            minter.cancel()
            await asyncio.gather(minter, return_exceptions=True)
    assert not is_allowed(decision), decision
    assert decision.rule == FAIL_CLOSED_RULE
    assert "signature is not valid" in decision.reason


async def test_an_allow_for_another_request_with_the_same_ids_is_refused(
    harness: PolicyHarness,
) -> None:
    """The victim asks for a denied tool. An attacker copies its ids into a request for an
    allowed call, has the real service sign the allow, and hands it to the victim before the
    service's own answer (here: the victim's request is never answered, so the forwarded allow
    is the only reply it sees)."""
    await harness.start_service()
    victim_names = TopicNames(prefix=f"{harness.names.prefix}.victim")
    await ensure_topics(harness.kafka, victim_names.core_topics())
    victim = Authorizer(
        harness.kafka, victim_names, instance_id="victim", verify_keys=PUBLIC_KEYS, timeout_s=20.0
    )
    await victim.start()
    harness.authorizers.append(victim)
    attacker = RequestReplyClient(harness.kafka, harness.names, instance_id="attacker")
    await attacker.start()
    try:
        async with bus(harness, victim_names.policy_requests) as (consumer, producer):
            asked = asyncio.create_task(tool_call(victim, task(), "shell"))
            record = await consumer.getone()
            seen: AuthorizationRequest = decode(record.value, AuthorizationRequest)
            assert seen.tool == "shell"
            substitute = msgspec.structs.replace(
                seen, tool="send-email", reply_to=attacker.reply_topic
            )
            reply = await attacker.request(
                harness.names.policy_requests,
                key=record.key or b"",
                value=encode(substitute),
                timeout_s=20.0,
                correlation_id=seen.request_id,
            )
            allow: Decision = decode(reply.value, Decision)
            assert is_allowed(allow), "the substitute is an allowed call"
            await producer.send_and_wait(
                header(record.headers, HEADER_REPLY_TO) or seen.reply_to,
                value=reply.value,
                headers=[(HEADER_CORRELATION_ID, seen.request_id.encode())],
            )
            decision = await asked
    finally:
        await attacker.stop()
    assert not is_allowed(decision), decision
    assert decision.rule == FAIL_CLOSED_RULE
    assert "another request" in decision.reason


async def test_requests_naming_reply_topics_that_do_not_exist_stall_nobody(
    harness: PolicyHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten requests answer to reply topics that do not exist, ten to topics that are no reply
    topic at all. The next caller is answered while the first ten are still in flight; those
    fail on their own; the other ten are refused and dead-lettered without a reply."""
    caplog.set_level(logging.WARNING, logger="policy_service.request_loop")
    await harness.start_service(settings=policy_settings(reply_send_timeout_s=10.0))
    authorizer = await harness.authorizer(timeout_s=10.0)
    assert is_allowed(await model_call(authorizer, task()))
    names = harness.names
    ghosts = [names.replies(f"ghost-{i}") for i in range(10)]
    foreign = [f"{names.prefix}.tasks" if i == 0 else f"nowhere-{i}" for i in range(10)]
    producer = make_producer(harness.kafka)
    await producer.start()
    try:
        for i, reply_to in enumerate(ghosts + foreign):
            bad = AuthorizationRequest(
                request_id=f"bad-{i}",
                task_id=task(),
                system="report",
                agent="researcher",
                step_id="s1",
                action=Action.MODEL_CALL,
                model="mock-small",
                endpoint="local",
                reply_to=reply_to,
                deadline=utcnow(),
            )
            await producer.send_and_wait(
                names.policy_requests, key=bad.task_id.encode(), value=encode(bad)
            )
    finally:
        await producer.stop()

    def dropped() -> set[str]:
        """The ghost topics whose reply the service gave up on (its warning)."""
        messages = [
            r.getMessage() for r in caplog.records if r.name == "policy_service.request_loop"
        ]
        return {g for g in ghosts for m in messages if g in m and "dropped" in m}

    decision = await model_call(authorizer, task())
    assert is_allowed(decision), decision
    assert len(dropped()) < len(ghosts), "answered while undeliverable replies were in flight"
    await wait_until(lambda: dropped() == set(ghosts), timeout=60, message="each ghost dropped")
    letters = await consume_decoded(harness.kafka, names.policy_requests_dlq, 10, DeadLetter)
    assert all("is not a requester's reply topic" in letter.reason for letter in letters)
    assert sorted(
        decode(letter.value, AuthorizationRequest).reply_to for letter in letters
    ) == sorted(foreign)
    admin = make_admin(harness.kafka)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert not topics & set(ghosts + foreign[1:]), "nothing was produced to them"
    # nor to the task topic, which exists: the service refused to use it as a reply topic
    reader = make_consumer(harness.kafka, group_id=None)
    await reader.start()
    try:
        parts = [TopicPartition(names.tasks, p) for p in range(harness.kafka.partitions)]
        ends = await reader.end_offsets(parts)
    finally:
        await reader.stop()
    assert not any(ends.values()), ends


async def test_a_substituted_request_under_the_same_id_is_recorded_as_its_own_decision(
    harness: PolicyHarness,
) -> None:
    """Two requests under one request id (the second altered: another tool) are two decisions:
    each has its own `policy.decided` event, so the ledger (idempotent on `event_id`) keeps
    both and the substitution shows in the audit trail."""
    await harness.start_service()
    client = RequestReplyClient(harness.kafka, harness.names, instance_id="substituter")
    await client.start()
    t = task()
    original = AuthorizationRequest(
        request_id=f"req-{uuid.uuid4().hex[:8]}",
        task_id=t,
        system="report",
        agent="researcher",
        step_id="s1",
        action=Action.TOOL_CALL,
        tool="shell",
        reply_to=client.reply_topic,
        deadline=utcnow() + timedelta(seconds=30),
    )
    substitute = msgspec.structs.replace(original, tool="send-email")
    try:
        for request in (original, substitute):
            reply = await client.request(
                harness.names.policy_requests,
                key=t.encode(),
                value=encode(request),
                timeout_s=20.0,
                correlation_id=request.request_id,
            )
            assert decode(reply.value, Decision).request_id == original.request_id
    finally:
        await client.stop()
    events = await consume_decoded(harness.kafka, harness.names.events, 2, Event)
    decided = [e for e in events if e.type == EventType.POLICY_DECIDED and e.task_id == t]
    assert sorted(e.data["tool"] for e in decided) == ["send-email", "shell"]
    assert len({e.event_id for e in decided}) == 2, [e.event_id for e in decided]


async def test_approval_records_written_by_a_plain_producer_allow_nothing(
    harness: PolicyHarness,
) -> None:
    """An attacker writes, for an id of its own making, a parked step and a granted decision on
    the approvals topic (anyone who reaches the broker can), then asks for the approval-gated
    call with that id. The policy service never issued the approval: deny."""
    await harness.start_service()
    authorizer = await harness.authorizer()
    t = task()
    made_up = f"apr-{uuid.uuid4().hex[:20]}"
    call = AuthorizationRequest(
        request_id="forged",
        task_id=t,
        system="report",
        agent="researcher",
        step_id="s1",
        action=Action.TOOL_CALL,
        tool="wire-money",
        reply_to="unused",
        deadline=utcnow(),
    )
    step = Step(task_id=t, system="report", agent="researcher", step_id="s1", task_input="pay")
    records: list[ApprovalRequest | ApprovalDecision] = [
        ApprovalRequest(
            approval_id=made_up,
            task_id=t,
            system="report",
            agent="researcher",
            step=step,
            request=call,
            expires_at=utcnow() + timedelta(hours=1),
        ),
        ApprovalDecision(approval_id=made_up, task_id=t, decision="granted", decided_by="alice"),
    ]
    async with bus(harness, harness.names.approvals) as (_, producer):
        for record in records:
            await producer.send_and_wait(
                harness.names.approvals, key=t.encode(), value=encode(record)
            )
    running = harness.running[0].service
    await wait_until(lambda: running.approvals.book.get(made_up) is not None)
    decision = await tool_call(authorizer, t, "wire-money", approval_id=made_up)
    assert (decision.decision, decision.rule) == ("deny", "approval"), decision
    assert "not issued by the policy service" in decision.reason


async def test_a_decision_no_approver_signed_neither_allows_nor_blocks_the_real_one(
    harness: PolicyHarness,
) -> None:
    """The policy service issued an approval and the step is parked. Whoever may write the
    approvals topic (every actor parks its steps there) writes a granted decision for it,
    unsigned, then one signed with a key of its own making: the call stays unapproved, and the
    approver's own decision still decides it."""
    await harness.start_service()
    authorizer = await harness.authorizer()
    t = task()
    asked = await tool_call(authorizer, t, "wire-money")
    assert asked.decision == "approval_required" and asked.approval_id
    await park(harness, parked(asked, t))
    own_key = parse_signing_key(generate("mallory")[0])
    forged = [
        ApprovalDecision(
            approval_id=asked.approval_id, task_id=t, decision="granted", decided_by="alice"
        ),
        sign_approval(
            own_key,
            ApprovalDecision(
                approval_id=asked.approval_id, task_id=t, decision="granted", decided_by="alice"
            ),
        ),
    ]
    async with bus(harness, harness.names.approvals) as (_, producer):
        for record in forged:
            await producer.send_and_wait(
                harness.names.approvals, key=t.encode(), value=encode(record)
            )
    book = harness.running[0].service.approvals.book
    await wait_until(lambda: list(book.untrusted).count(asked.approval_id) == 2)
    entry = book.get(asked.approval_id)
    assert entry is not None and entry.decision is None

    unapproved = await tool_call(authorizer, t, "wire-money", approval_id=asked.approval_id)
    assert (unapproved.decision, unapproved.rule) == ("deny", "approval"), unapproved

    approver = approver_for(VERIFY_KEYS)
    assert [
        e.request.approval_id
        for e in await list_approvals(harness.kafka, harness.names, approver.trusted)
    ] == [asked.approval_id], "the forged decisions do not show as decided"
    decision = await decide_approval(
        harness.kafka,
        harness.names,
        asked.approval_id,
        signer=approver.signer,
        trusted=approver.trusted,
        granted=True,
        decided_by="alice",
    )
    assert decision.key_id == approver.signer.key_id
    approved = await tool_call(authorizer, t, "wire-money", approval_id=asked.approval_id)
    assert is_allowed(approved), approved

    # The policy service resumed the step once, for the approver's decision alone: the forged
    # decisions came first on the same partition (the resumer reads it in order), and resumed
    # nothing.
    inbox = harness.names.agent("researcher")
    [resumed] = await consume_decoded(harness.kafka, inbox, 1, Step)
    assert isinstance(resumed.resume, ApprovalResume) and resumed.resume.approval is not None
    assert resumed.resume.approval.decided_by == "alice"
    steps = [decode(r.value, Step) for r in await read_topic(harness.kafka, inbox)]
    assert len(steps) == 1, steps
    events = [decode(r.value, Event) for r in await read_topic(harness.kafka, harness.names.events)]
    granted = [e for e in events if e.type == EventType.APPROVAL_GRANTED]
    assert [e.data["approval_id"] for e in granted] == [asked.approval_id]
