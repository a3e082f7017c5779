"""`podium policy`: the policy service, answering authorization requests over Kafka.

Plain aiokafka rather than a FastStream subscriber, for latency and control: the request
consumer's idle fetch wait is tuned down (`fetch_max_wait_ms`), a fetched batch is decided
concurrently and its budget reservations go to PostgreSQL together, in one round trip, once every
request of the batch has been through the other rules (`_BatchReservations`), the replies and the
`policy.decided` events of a batch are produced without waiting for each other, and the offsets
are committed once per batch after every reply and event is acknowledged (commit after the work).
A FastStream handler would add its middleware stack and one publish-and-ack per message.

Loops owned by `run()` (one task group): requests, usage settlement (`model.called` events),
the approvals book (the whole `podium.approvals` topic, every replica), approval expiry (only for
the approvals whose partition maps to a request partition this replica owns, so one replica
expires a given approval), and the rules source (hot reload of the applied manifests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from manifests.watcher import CatalogWatcher
from podium.core.pricing import estimate_cost_usd
from podium.core.settings import KafkaSettings
from policy_service.approvals import (
    ApprovalAlreadyDecided,
    ApprovalBook,
    ApprovalNotFound,
    decide_approval,
    decode_record,
    new_approval_id,
    partitions_of,
)
from policy_service.budgets import BudgetRequest, BudgetStore, Reservation
from policy_service.events import decision_event
from policy_service.rules import RuleSet, Verdict, evaluate, rules_from_resources
from policy_service.settings import PolicySettings
from policy_service.signing import sign_decision
from topics.codec import (
    HEADER_CORRELATION_ID,
    HEADER_REPLY_TO,
    MalformedMessage,
    decode,
    encode,
    header,
    headers_dict,
    headers_for,
)
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import (
    Action,
    AuthorizationRequest,
    DeadLetter,
    Decision,
    DecisionKind,
    Event,
    EventType,
    MessageDeadLetteredData,
    ModelCalledData,
    event,
    payload_of,
    utcnow,
)
from topics.names import TopicNames

log = logging.getLogger(__name__)

_MAX_BATCHES_IN_FLIGHT = 8

Pricer = Callable[[str, str, int, int, Any], float | None]
"""estimate_cost_usd(provider, model, input_tokens, output_tokens, endpoint pricing)."""

Reserve = Callable[[BudgetRequest], Awaitable[Reservation]]


class _BatchReservations:
    """The budget reservations of one fetched batch, sent to PostgreSQL in one round trip.

    Every record of the batch is decided concurrently; a record that passes the other rules and
    needs a reservation registers it and waits; the others only report that they are evaluated.
    Once every record is evaluated, `flush` reserves the registered ones together, in record
    order (the requests of one task share a partition, so this is their order on the topic), and
    hands each its answer. A database failure is every waiting request's failure (a deny).
    """

    def __init__(self, store: BudgetStore | None, size: int) -> None:
        self._store = store
        self._unevaluated = set(range(size))
        self._wanted: dict[int, tuple[BudgetRequest, asyncio.Future[Reservation]]] = {}
        self._all_evaluated = asyncio.Event()
        if not self._unevaluated:
            self._all_evaluated.set()

    def evaluated(self, index: int) -> None:
        """Record `index` needs no (more) reservation; idempotent."""
        self._unevaluated.discard(index)
        if not self._unevaluated:
            self._all_evaluated.set()

    def reserver(self, index: int) -> Reserve:
        async def reserve(request: BudgetRequest) -> Reservation:
            future: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
            self._wanted[index] = (request, future)
            self.evaluated(index)
            return await future

        return reserve

    async def flush(self) -> None:
        await self._all_evaluated.wait()
        if not self._wanted:
            return
        wanted = [self._wanted[i] for i in sorted(self._wanted)]
        try:
            if self._store is None:
                raise RuntimeError("the budget store is not open")
            results = await self._store.reserve_many([request for request, _ in wanted])
        except Exception as exc:
            for _, future in wanted:
                future.set_exception(exc)
            return
        for (_, future), result in zip(wanted, results, strict=True):
            future.set_result(result)


class _Committable:
    """Request offsets whose batches are done, waiting for the commit loop."""

    def __init__(self) -> None:
        self.pending: dict[TopicPartition, int] = {}
        self.changed = asyncio.Event()
        self.closed = False

    def add(self, offsets: dict[TopicPartition, int]) -> None:
        self.pending.update(offsets)
        self.changed.set()

    def close(self) -> None:
        self.closed = True
        self.changed.set()


class RulesSource(Protocol):
    """Where the rules come from: a snapshot now, kept current between `start` and `stop`."""

    def current(self) -> RuleSet: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticRules:
    """A fixed rule set (tests; a deployment uses `WatchedRules`)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def current(self) -> RuleSet:
        return self.rules

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class WatchedRules:
    """The rules of the applied manifests (`podium.manifests`), reloaded when they change."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames) -> None:
        self._watcher = CatalogWatcher(kafka, names)
        self._version = -1
        self._rules = RuleSet()

    def current(self) -> RuleSet:
        if self._watcher.version != self._version:
            self._version = self._watcher.version
            self._rules = rules_from_resources(self._watcher.catalog.resources())
        return self._rules

    async def start(self) -> None:
        await self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()


class _Ownership(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owned: set[int], ready: asyncio.Event) -> None:
        self._owned = owned
        self._ready = ready

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self._owned.discard(tp.partition)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._owned.update(tp.partition for tp in assigned)
        self._ready.set()


class PolicyService:
    """The policy service (implements `podium.core.lifecycle.Service`)."""

    name = "policy"

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        settings: PolicySettings,
        *,
        hmac_key: bytes,
        database_url: str,
        rules: RulesSource,
        pricer: Pricer | None = None,
        db_schema: str = "policy",
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._settings = settings
        self._key = hmac_key
        self._dsn = database_url
        self._schema = db_schema
        self._rules = rules
        self._pricer: Pricer = pricer or estimate_cost_usd
        self.instance_id = settings.instance_id or f"policy-{uuid.uuid4().hex[:8]}"
        self.ready = asyncio.Event()
        """Set once the request consumer has its partitions and the approvals book is read."""
        self.book = ApprovalBook()
        self._owned: set[int] = set()
        self._request_partitions = 1
        self._book_positions: dict[int, int] = {}
        self._book_advanced = asyncio.Event()
        self._book_consumer: AIOKafkaConsumer | None = None
        self._budgets: BudgetStore | None = None
        self._producer: AIOKafkaProducer | None = None

    # --- lifespan -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        names = self._names
        await ensure_topics(
            self._kafka,
            [names.policy_requests, names.policy_requests_dlq, names.events, names.approvals],
        )
        self._budgets = await BudgetStore.connect(self._dsn, schema=self._schema)
        await self._rules.start()
        self._producer = make_producer(self._kafka)
        assigned = asyncio.Event()
        requests = make_consumer(
            self._kafka,
            group_id=names.policy_group,
            isolation_level="read_uncommitted",
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
        )
        usage = make_consumer(self._kafka, names.events, group_id=f"{names.policy_group}.usage")
        book = make_consumer(self._kafka, group_id=None)
        self._book_consumer = book
        clients: list[AIOKafkaProducer | AIOKafkaConsumer] = []
        try:
            for client in (self._producer, requests, usage, book):
                await client.start()
                clients.append(client)
            requests.subscribe([names.policy_requests], listener=_Ownership(self._owned, assigned))
            self._request_partitions = len(
                await partitions_of(self._kafka, names.policy_requests) or [0]
            )
            book_partitions = await self._start_book(book)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._serve_requests(requests, stop))
                group.create_task(self._settle_usage(usage, stop))
                group.create_task(self._follow_book(book, book_partitions, stop))
                group.create_task(self._expire_approvals(stop))
                group.create_task(self._mark_ready(assigned, book_partitions, stop))
                await stop.wait()
        finally:
            for client in reversed(clients):
                with contextlib.suppress(Exception):
                    await client.stop()
            await self._rules.stop()
            await self._budgets.close()
            log.info("policy service %s stopped", self.instance_id)

    async def _mark_ready(
        self, assigned: asyncio.Event, partitions: list[TopicPartition], stop: asyncio.Event
    ) -> None:
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
            await self._book_caught_up(partitions, timeout_s=30)
        self.ready.set()
        log.info("policy service %s ready", self.instance_id)

    # --- requests -----------------------------------------------------------------------------

    async def _serve_requests(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Fetch, and decide each fetched batch concurrently with the next fetches (pipelined,
        at most `_MAX_BATCHES_IN_FLIGHT`). A batch's offsets become committable once its replies
        and events are acknowledged and the batch before it is committable (fetch order); one
        commit loop commits the latest committable offsets, so a commit covers every batch that
        became committable while the previous commit was in flight (one commit per batch in a
        chain would bound the throughput by the commit round trip)."""
        slots = asyncio.Semaphore(_MAX_BATCHES_IN_FLIGHT)
        offsets = _Committable()
        committer = asyncio.create_task(self._commit_loop(consumer, offsets))
        previous: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=500)
                if not batches:
                    continue
                await slots.acquire()
                previous = asyncio.create_task(self._serve_batch(batches, previous, offsets))
                previous.add_done_callback(lambda _: slots.release())
        finally:
            try:
                if previous is not None:
                    await asyncio.gather(previous, return_exceptions=True)
            finally:
                offsets.close()  # the commit loop commits what is left, then returns
                await asyncio.gather(committer, return_exceptions=True)

    async def _commit_loop(self, consumer: AIOKafkaConsumer, offsets: _Committable) -> None:
        """Commit the committable offsets, one commit at a time, until closed and done."""
        while True:
            if not offsets.pending:
                if offsets.closed:
                    return
                offsets.changed.clear()
                await offsets.changed.wait()
                continue
            pending, offsets.pending = offsets.pending, {}
            try:
                await consumer.commit(pending)
            except Exception as exc:  # revoked meanwhile: the new owner re-decides (idempotent)
                log.warning("could not commit policy request offsets: %s", exc)

    async def _serve_batch(
        self,
        batches: dict[TopicPartition, list[ConsumerRecord]],
        previous: asyncio.Task[None] | None,
        offsets: _Committable,
    ) -> None:
        records = [r for rs in batches.values() for r in rs]
        reservations = _BatchReservations(self._budgets, len(records))
        async with asyncio.TaskGroup() as group:
            group.create_task(reservations.flush())
            handlers = [
                group.create_task(self._handle_request(record, index, reservations))
                for index, record in enumerate(records)
            ]
        pending = [d for handler in handlers for d in handler.result()]
        for result in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(result, BaseException):
                log.error("a policy reply or event was not delivered: %s", result)
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        offsets.add({tp: rs[-1].offset + 1 for tp, rs in batches.items()})

    async def _handle_request(
        self, record: ConsumerRecord, index: int, reservations: _BatchReservations
    ) -> list[asyncio.Future[Any]]:
        """Decide one request (record `index` of its batch) and send the reply and the event;
        never raises."""
        assert self._producer is not None
        producer = self._producer
        try:
            request: AuthorizationRequest = decode(record.value, AuthorizationRequest)
        except MalformedMessage as exc:
            reservations.evaluated(index)
            return await self._dead_letter(record, exc.reason)
        try:
            decision = await self._decide(request, reservations.reserver(index))
        except Exception as exc:  # an engine or database failure is a deny, never a crash
            log.exception("deciding request %s failed", request.request_id)
            decision = Decision(
                request_id=request.request_id,
                task_id=request.task_id,
                decision=str(DecisionKind.DENY),
                rule="error",
                reason=f"the policy service could not decide: {type(exc).__name__}: {exc}",
            )
        finally:
            reservations.evaluated(index)
        signed = sign_decision(decision, self._key)
        key = request.task_id.encode()
        futures: list[asyncio.Future[Any]] = []
        try:
            futures.append(
                await producer.send(
                    request.reply_to,
                    key=key,
                    value=encode(signed),
                    headers=headers_for(signed, [(HEADER_CORRELATION_ID, request.request_id)]),
                )
            )
            ev = decision_event(request, signed)
            futures.append(
                await producer.send(
                    self._names.events, key=key, value=encode(ev), headers=headers_for(ev)
                )
            )
        except Exception:
            log.exception("could not send the decision on request %s", request.request_id)
        return futures

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> list[asyncio.Future[Any]]:
        assert self._producer is not None
        names = self._names
        log.warning(
            "request at %s[%d]@%d is malformed: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        task_id = (record.key or b"").decode(errors="replace") or "unknown"
        letter = DeadLetter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value or b"",
            headers=headers_dict(record.headers),
            reason=reason,
            service="policy",
        )
        ev = event(
            MessageDeadLetteredData(
                topic=record.topic,
                dlq_topic=names.policy_requests_dlq,
                partition=record.partition,
                offset=record.offset,
                reason=reason,
            ),
            event_id=f"dlq:{record.topic}:{record.partition}:{record.offset}",
            task_id=task_id,
            source="policy",
        )
        futures: list[asyncio.Future[Any]] = []
        try:
            futures.append(
                await self._producer.send(
                    names.policy_requests_dlq,
                    key=record.key,
                    value=encode(letter),
                    headers=headers_for(letter),
                )
            )
            futures.append(
                await self._producer.send(
                    names.events, key=record.key, value=encode(ev), headers=headers_for(ev)
                )
            )
            # Answer too when the requester can be found, so it denies now, not at its deadline.
            reply_to = header(record.headers, HEADER_REPLY_TO)
            correlation = header(record.headers, HEADER_CORRELATION_ID)
            if reply_to and correlation:
                answer = sign_decision(
                    Decision(
                        request_id=correlation,
                        task_id=task_id,
                        decision=str(DecisionKind.DENY),
                        rule="malformed_request",
                        reason=f"the request could not be read: {reason}",
                    ),
                    self._key,
                )
                futures.append(
                    await self._producer.send(
                        reply_to,
                        key=record.key,
                        value=encode(answer),
                        headers=headers_for(answer, [(HEADER_CORRELATION_ID, correlation)]),
                    )
                )
        except Exception:
            log.exception(
                "could not dead-letter %s[%d]@%d", record.topic, record.partition, record.offset
            )
        return futures

    async def _decide(self, request: AuthorizationRequest, reserve: Reserve) -> Decision:
        """Decide one request; a budget reservation, when needed, goes through `reserve` (at
        most once)."""

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

        now = utcnow()
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
        approved = False
        if request.approval_id:
            refusal = await self._check_approval(request)
            if refusal is not None:
                return answer(refusal)
            approved = True
        rules = self._rules.current()
        verdict = evaluate(rules, request, approved=approved)
        if verdict.decision == DecisionKind.APPROVAL_REQUIRED:
            return answer(
                verdict,
                approval_id=new_approval_id(),
                approval_expires_at=now + timedelta(seconds=self._settings.approval_ttl_s),
                decided_at=now,
            )
        if verdict.decision != DecisionKind.ALLOW or request.action != Action.MODEL_CALL:
            return answer(verdict)
        if not verdict.caps:
            return answer(verdict)
        usd = self._estimate_usd(rules, request)
        if usd is None:
            if any(cap.max_usd is not None for cap in verdict.caps):
                capped = next(c for c in verdict.caps if c.max_usd is not None)
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
        reservation = await reserve(
            BudgetRequest(
                request_id=request.request_id,
                task_id=request.task_id,
                caps=verdict.caps,
                tokens=request.estimated_tokens,
                usd=usd,
            )
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

    def _estimate_usd(self, rules: RuleSet, request: AuthorizationRequest) -> float | None:
        """Upper bound of the call's cost: every estimated token priced as an output token."""
        if request.estimated_tokens == 0:
            return 0.0
        agent = rules.agents.get(request.agent)
        endpoint_name = request.endpoint or (agent.endpoint if agent else "")
        endpoint = rules.endpoints.get(endpoint_name)
        if endpoint is None:
            return None
        return self._pricer(
            endpoint.provider, request.model or "", 0, request.estimated_tokens, endpoint.pricing
        )

    # --- approvals ----------------------------------------------------------------------------

    async def _check_approval(self, request: AuthorizationRequest) -> Verdict | None:
        """None when the call's approval is granted and matches; else the deny verdict."""
        approval_id = request.approval_id or ""
        entry = self.book.get(approval_id)
        if entry is None or entry.decision is None:
            # The resumed step can arrive before this replica has read the decision: catch up.
            remaining = (request.deadline - utcnow()).total_seconds()
            if self._book_consumer is not None and remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await self._book_caught_up(None, timeout_s=remaining)
            entry = self.book.get(approval_id)

        def deny(reason: str) -> Verdict:
            return Verdict(DecisionKind.DENY, "approval", "", reason)

        if entry is None:
            return deny(f"approval {approval_id!r} is unknown")
        if entry.status != "granted":
            by = entry.decision.decided_by if entry.decision else ""
            return deny(f"approval {approval_id!r} is {entry.status}" + (f" ({by})" if by else ""))
        parked = entry.request
        if (parked.task_id, parked.agent, parked.request.action, parked.request.tool) != (
            request.task_id,
            request.agent,
            request.action,
            request.tool,
        ):
            return deny(f"approval {approval_id!r} was granted for another call")
        return None

    async def _start_book(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        topic = self._names.approvals
        partitions = [TopicPartition(topic, p) for p in await partitions_of(self._kafka, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return partitions

    async def _follow_book(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for tp, records in batches.items():
                for record in records:
                    try:
                        self.book.apply(decode_record(record.value), tp.partition)
                    except MalformedMessage as exc:
                        log.warning(
                            "approvals %s[%d]@%d unreadable: %s",
                            tp.topic,
                            tp.partition,
                            record.offset,
                            exc.reason,
                        )
                    self._book_positions[tp.partition] = record.offset + 1
            for tp in partitions:
                position = await consumer.position(tp)
                if position > self._book_positions.get(tp.partition, 0):
                    self._book_positions[tp.partition] = position
            self._book_advanced.set()

    async def _book_caught_up(
        self, partitions: list[TopicPartition] | None, *, timeout_s: float
    ) -> None:
        consumer = self._book_consumer
        assert consumer is not None
        parts = partitions or list(consumer.assignment())
        ends = await consumer.end_offsets(parts)
        async with asyncio.timeout(timeout_s):
            while any(self._book_positions.get(tp.partition, 0) < end for tp, end in ends.items()):
                self._book_advanced.clear()
                await self._book_advanced.wait()

    async def _expire_approvals(self, stop: asyncio.Event) -> None:
        interval = self._settings.expiry_interval_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            if stop.is_set() or not self.ready.is_set():
                continue
            for entry in self.book.due(utcnow(), self._settings.approval_ttl_s):
                if entry.partition % self._request_partitions not in self._owned:
                    continue
                approval_id = entry.request.approval_id
                try:
                    await decide_approval(
                        self._kafka,
                        self._names,
                        approval_id,
                        granted=False,
                        expired=True,
                        decided_by="policy-service",
                        reason="not decided before its deadline",
                    )
                    log.info("approval %s expired", approval_id)
                except (ApprovalAlreadyDecided, ApprovalNotFound):
                    pass
                except Exception:
                    log.exception("could not expire approval %s", approval_id)

    # --- usage settlement ---------------------------------------------------------------------

    async def _settle_usage(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            settled = True
            for records in batches.values():
                for record in records:
                    settled = settled and await self._settle_one(record, stop)
            if batches and settled:
                await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batches.items()})

    async def _settle_one(self, record: ConsumerRecord, stop: asyncio.Event) -> bool:
        """Apply one event's usage; False only when stopped before it could be applied."""
        try:
            ev: Event = decode(record.value, Event)
        except MalformedMessage as exc:
            # The ledger dead-letters unreadable events; here it only cannot be a usage event.
            log.warning(
                "event %s[%d]@%d unreadable: %s",
                record.topic,
                record.partition,
                record.offset,
                exc.reason,
            )
            return True
        if ev.type != EventType.MODEL_CALLED:
            return True
        try:
            usage = payload_of(ev, ModelCalledData)
        except msgspec.ValidationError as exc:
            log.warning("model.called event %s has a bad payload: %s", ev.event_id, exc)
            return True
        assert self._budgets is not None
        delay = 0.2
        while not stop.is_set():
            try:
                await self._budgets.settle(
                    event_id=ev.event_id,
                    request_id=usage.request_id,
                    tokens=usage.input_tokens + usage.output_tokens,
                    usd=usage.cost_usd,
                )
                return True
            except Exception:  # the database is down: retry, do not commit past it
                log.exception("settling %s failed; retrying in %.1f s", ev.event_id, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
                delay = min(delay * 2, 5.0)
        return False
