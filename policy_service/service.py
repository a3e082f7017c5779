"""`podium policy`: the policy service, answering authorization requests over Kafka.

Plain aiokafka rather than a FastStream subscriber, for latency and control: the request
consumer's idle fetch wait is tuned down (`fetch_max_wait_ms`), a fetched batch is decided
concurrently with its budget reservations in one round trip, and offsets are committed once per
batch after every reply and event is acknowledged (`request_loop.py`). A FastStream handler would
add its middleware stack and one publish-and-ack per message.

This module is the lifespan: it opens what the service owns (topics, the budget store, the rules
source, the Kafka clients), runs its loops in one task group until `stop`, and closes them. The
loops: requests (`request_loop.py`, deciding with `decision.decide`), usage settlement
(`settlement.py`), the approvals book (`approval_follower.py`, every replica reads the whole
topic), the resumption of decided approvals' steps (`approval_resumer.py`) and approval expiry
(`approval_expiry.py`), and the operators' controls (`control_follower.py`, every replica reads the
whole topic; `control_recorder.py`, one replica records each control as an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from podium.core.pricing import estimate_cost_usd
from podium.core.settings import KafkaSettings
from policy_service._reservations import Reserve
from policy_service.approval_expiry import expire_approvals
from policy_service.approval_follower import ApprovalFollower
from policy_service.approval_resumer import ApprovalResumer
from policy_service.approval_store import ApprovalStore
from policy_service.budgets import BudgetStore
from policy_service.control_follower import ControlFollower
from policy_service.control_recorder import record_controls
from policy_service.control_topic import ensure_controls_topic
from policy_service.decision import Pricer, decide
from policy_service.keys import SigningKey, VerifyKeys
from policy_service.request_loop import Ownership, RequestLoop
from policy_service.reservation import BudgetRequest, Reservation
from policy_service.rules_source import RulesSource, StaticRules, WatchedRules
from policy_service.settings import PolicySettings
from policy_service.settlement import settle_usage
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import AuthorizationRequest, Decision, DecisionKind, utcnow
from topics.names import TopicNames
from topics.tables import partitions_of

__all__ = ["PolicyService", "RulesSource", "StaticRules", "WatchedRules"]

log = logging.getLogger(__name__)

_READY_BOOK_TIMEOUT_S = 30.0
"""How long readiness waits for the approvals book to catch up (then it is ready anyway)."""


class PolicyService:
    """The policy service (implements `podium.core.lifecycle.Service`)."""

    name = "policy"

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        settings: PolicySettings,
        *,
        signing_key: SigningKey,
        approver_keys: VerifyKeys,
        database_url: str,
        rules: RulesSource,
        pricer: Pricer | None = None,
        db_schema: str = "policy",
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._settings = settings
        self._key = signing_key
        self._dsn = database_url
        self._schema = db_schema
        self._rules = rules
        self._pricer: Pricer = pricer or estimate_cost_usd
        self.instance_id = settings.instance_id or f"policy-{uuid.uuid4().hex[:8]}"
        self.ready = asyncio.Event()
        """Set once the request consumer has its partitions and the approvals book is read."""
        # Decisions count when an approver signed them, or this service (an expiry).
        trusted = {**approver_keys, signing_key.key_id: signing_key.verify_key()}
        self.approvals = ApprovalFollower(kafka, names, trusted)
        self.controls = ControlFollower(kafka, names)
        self._owned: set[int] = set()
        self._request_partitions = 1
        self._issued: ApprovalStore | None = None

    async def run(self, stop: asyncio.Event) -> None:
        names = self._names
        await ensure_topics(
            self._kafka,
            [names.policy_requests, names.policy_requests_dlq, names.events, names.approvals],
        )
        await ensure_controls_topic(self._kafka, names)
        budgets = await BudgetStore.connect(self._dsn, schema=self._schema)
        self._issued = ApprovalStore(budgets.pool, schema=self._schema)
        try:
            await self._issued.migrate()
            await self._rules.start()
        except BaseException:
            await budgets.close()
            raise
        producer = make_producer(self._kafka)
        assigned = asyncio.Event()
        requests = make_consumer(
            self._kafka,
            group_id=names.policy_group,
            isolation_level="read_uncommitted",
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
        )
        usage = make_consumer(self._kafka, names.events, group_id=f"{names.policy_group}.usage")
        book = make_consumer(self._kafka, group_id=None)
        controls = make_consumer(self._kafka, group_id=None, fetch_max_wait_ms=100)
        recorded = make_consumer(
            self._kafka, names.controls, group_id=f"{names.policy_group}.controls"
        )
        resumer = ApprovalResumer(self._kafka, names, self.approvals)
        clients: list[AIOKafkaProducer | AIOKafkaConsumer] = [
            producer,
            requests,
            usage,
            book,
            controls,
            recorded,
        ]
        try:
            for client in clients:
                await client.start()
            requests.subscribe([names.policy_requests], listener=Ownership(self._owned, assigned))
            self._request_partitions = len(
                await partitions_of(self._kafka, names.policy_requests) or [0]
            )
            await self.approvals.start(book)
            await self.controls.start(controls)  # read to its end before any decision
            await resumer.start()
            loop = RequestLoop(
                producer,
                names,
                signing_key=self._key,
                budgets=budgets,
                decide=self._decide,
                reply_send_timeout_s=self._settings.reply_send_timeout_s,
            )
            async with asyncio.TaskGroup() as group:
                group.create_task(loop.serve(requests, stop))
                group.create_task(settle_usage(usage, budgets, stop))
                group.create_task(self.approvals.follow(stop))
                group.create_task(self.controls.follow(stop))
                group.create_task(record_controls(recorded, producer, names, stop))
                group.create_task(resumer.run(stop))
                group.create_task(
                    expire_approvals(
                        self._kafka,
                        names,
                        self._settings,
                        self.approvals.book,
                        signer=self._key,
                        owns=self._owns_approval_partition,
                        ready=self.ready,
                        stop=stop,
                    )
                )
                group.create_task(self._mark_ready(assigned, stop))
                await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await resumer.stop()
            for client in reversed(clients):  # started or not: each was made, each is stopped
                with contextlib.suppress(Exception):
                    await client.stop()
            await self._rules.stop()
            await budgets.close()
            log.info("policy service %s stopped", self.instance_id)

    async def _mark_ready(self, assigned: asyncio.Event, stop: asyncio.Event) -> None:
        waiter = asyncio.create_task(assigned.wait())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await self.approvals.caught_up(timeout_s=_READY_BOOK_TIMEOUT_S)
        self.ready.set()
        log.info("policy service %s ready", self.instance_id)

    @property
    def request_partitions(self) -> frozenset[int]:
        """The partitions of `<p>.policy.requests` this replica decides now."""
        return frozenset(self._owned)

    def _owns_approval_partition(self, partition: int) -> bool:
        return partition % self._request_partitions in self._owned

    async def _decide(self, request: AuthorizationRequest, reserve: Reserve) -> Decision:
        """Decide one request (`decision.decide`): check the controls (taking a throttle's token,
        given back unless the call is allowed), look its approval up (the book's entry and the
        service's own record), and make the budget reservation the decision asks for
        through `reserve` (at most once). A new approval is recorded before the reply; an allow
        that relies on an approval spends it, or is a deny when another call spent it first."""
        now = utcnow()
        store = self._issued
        assert store is not None, "run() first"
        approval = issued = None
        if request.approval_id:
            issued = await store.get(request.approval_id)
            approval = await self.approvals.entry_for(request) if issued is not None else None
        rules = self._rules.current()
        controls = self.controls.book.check(request, time.monotonic())

        def decided(reservation: Reservation | None) -> Decision | BudgetRequest:
            return decide(
                request,
                rules,
                now=now,
                pricer=self._pricer,
                approval_ttl_s=self._settings.approval_ttl_s,
                approval=approval,
                issued=issued,
                reservation=reservation,
                controls=controls,
            )

        outcome = decided(None)
        if isinstance(outcome, BudgetRequest):
            outcome = decided(await reserve(outcome))
            assert isinstance(outcome, Decision), "a decision with its reservation is final"
        if outcome.approval_id and outcome.approval_expires_at is not None:
            await store.issue(
                outcome.approval_id, request, at=now, expires_at=outcome.approval_expires_at
            )
        elif request.approval_id and outcome.decision == DecisionKind.ALLOW:
            if not await store.claim(request.approval_id, request.request_id):
                outcome = msgspec.structs.replace(
                    outcome,
                    decision=str(DecisionKind.DENY),
                    rule="approval",
                    reason=f"approval {request.approval_id!r} was used already",
                )
        if outcome.decision != DecisionKind.ALLOW:
            self.controls.book.refund(controls)
        return outcome
