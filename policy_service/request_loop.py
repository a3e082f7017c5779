"""The request loop: fetch authorization requests, decide them batch by batch, reply, commit.

A fetched batch is decided concurrently, with the next fetches (pipelined, at most
`MAX_BATCHES_IN_FLIGHT` batches); its budget reservations go to PostgreSQL in one round trip
(`_reservations.py`); each decision's `policy.decided` event is acknowledged before its reply
is sent (the policy service is the event's only writer); its offsets become committable once
every reply and event is acknowledged and the batch before it is committable (fetch order). One
commit loop commits the latest committable offsets (commit after the work). Each request is
decided in a `policy.decide` span whose parent is the requester's context (the W3C
`traceparent` header of the request).

A reply goes only to a requester's own reply topic (`TopicNames.is_reply_topic`); a request naming
any other topic is dead-lettered, undecided and unanswered. Handing a reply to Kafka is bounded
(`reply_send_timeout_s`: a reply topic that does not exist makes the producer wait for its
metadata), and a batch frees its slot once its requests are decided, not once its replies are
delivered: an undeliverable reply delays its own batch's commit, never the other requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from opentelemetry.trace import SpanKind

from podium.core import tracing
from policy_service._reservations import BatchReservations, Reserve
from policy_service.budgets import BudgetStore
from policy_service.dead_letters import dead_letter
from policy_service.events import decision_event
from policy_service.keys import SigningKey
from policy_service.signing import request_digest, sign_decision
from topics.codec import HEADER_CORRELATION_ID, MalformedMessage, decode, encode, headers_for
from topics.messages import AuthorizationRequest, Decision, DecisionKind
from topics.names import TopicNames

log = logging.getLogger(__name__)

MAX_BATCHES_IN_FLIGHT = 8

DECIDE_SPAN = "policy.decide"
"""The span of one request's decision, a child of the requester's span (`traceparent`)."""

Decide = Callable[[AuthorizationRequest, Reserve], Awaitable[Decision]]
"""Decide one request; a budget reservation, when needed, goes through the `Reserve` given."""


class Ownership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps the set of request partitions this replica owns; sets `ready` at the first
    assignment."""

    def __init__(self, owned: set[int], ready: asyncio.Event) -> None:
        self._owned = owned
        self._ready = ready

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self._owned.discard(tp.partition)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._owned.update(tp.partition for tp in assigned)
        self._ready.set()


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


class RequestLoop:
    """Serves the request topic with `decide`; replies are signed with `signing_key`."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        names: TopicNames,
        *,
        signing_key: SigningKey,
        budgets: BudgetStore,
        decide: Decide,
        reply_send_timeout_s: float,
    ) -> None:
        self._producer = producer
        self._names = names
        self._key = signing_key
        self._budgets = budgets
        self._decide = decide
        self._reply_send_timeout_s = reply_send_timeout_s

    async def serve(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Fetch, and decide each fetched batch concurrently with the next fetches. One commit
        covers every batch that became committable while the previous commit was in flight (one
        commit per batch in a chain would bound the throughput by the commit round trip)."""
        slots = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
        offsets = _Committable()
        committer = asyncio.create_task(self._commit_loop(consumer, offsets))
        previous: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=500)
                if not batches:
                    continue
                await slots.acquire()
                slot = _Slot(slots)
                previous = asyncio.create_task(
                    self._serve_batch(batches, previous, offsets, slot.release)
                )
                previous.add_done_callback(slot.released)
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
        decided: Callable[[], None],
    ) -> None:
        records = [r for rs in batches.values() for r in rs]
        reservations = BatchReservations(self._budgets, len(records))
        async with asyncio.TaskGroup() as group:
            group.create_task(reservations.flush())
            handlers = [
                group.create_task(self._handle_traced(record, index, reservations))
                for index, record in enumerate(records)
            ]
        decided()  # the next batch may be fetched and decided while these replies travel
        pending = [d for handler in handlers for d in handler.result()]
        for result in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(result, BaseException):
                log.error("a policy reply or event was not delivered: %s", result)
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        offsets.add({tp: rs[-1].offset + 1 for tp, rs in batches.items()})

    async def _handle_traced(
        self, record: ConsumerRecord, index: int, reservations: BatchReservations
    ) -> list[asyncio.Future[Any]]:
        """`_handle` in the `policy.decide` span, a child of the requester's (`traceparent`)."""
        async with tracing.span(
            DECIDE_SPAN,
            parent=tracing.context_from_headers(record.headers),
            kind=SpanKind.CONSUMER,
        ):
            return await self._handle(record, index, reservations)

    async def _handle(
        self, record: ConsumerRecord, index: int, reservations: BatchReservations
    ) -> list[asyncio.Future[Any]]:
        """Decide one request (record `index` of its batch) and send the reply and the event;
        never raises."""
        producer = self._producer
        try:
            request: AuthorizationRequest = decode(record.value, AuthorizationRequest)
        except MalformedMessage as exc:
            reservations.evaluated(index)
            return await dead_letter(
                producer, self._names, self._key, record, exc.reason, self._reply
            )
        if not self._names.is_reply_topic(request.reply_to):
            reservations.evaluated(index)
            reason = (
                f"reply_to {request.reply_to[:300]!r} is not a requester's reply topic "
                f"({self._names.replies('<instance>')}): refused, not answered"
            )
            return await dead_letter(producer, self._names, self._key, record, reason, None)
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
        tracing.annotate(
            **{
                "podium.task_id": request.task_id,
                "podium.request_id": request.request_id,
                "podium.action": str(request.action),
                "podium.decision": decision.decision,
                "podium.rule": decision.rule,
            }
        )
        signed = sign_decision(decision, self._key, request_digest=request_digest(request))
        key = request.task_id.encode()
        try:
            # Recorded before it is answered: the requester writes no copy, and a call never
            # runs on an allow that is not in the events (no record, no answer: it denies at
            # its deadline).
            ev = decision_event(request, signed)
            delivery = await producer.send(
                self._names.events, key=key, value=encode(ev), headers=headers_for(ev)
            )
            await delivery
        except Exception:
            log.exception("could not record the decision on request %s", request.request_id)
            return []
        return [
            self._reply(
                request.reply_to,
                key,
                encode(signed),
                headers_for(signed, [(HEADER_CORRELATION_ID, request.request_id)]),
            )
        ]

    def _reply(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Task[None]:
        """Deliver one reply in a task of its own (awaited with the batch's other deliveries):
        handing it to Kafka may take at most `reply_send_timeout_s`, then it is dropped."""
        return asyncio.create_task(self._deliver_reply(topic, key, value, headers))

    async def _deliver_reply(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        try:
            async with asyncio.timeout(self._reply_send_timeout_s):
                delivery = await self._producer.send(topic, key=key, value=value, headers=headers)
        except TimeoutError:
            log.warning(
                "the reply on %s could not be handed to Kafka within %.1f s (no such topic?): "
                "dropped, the requester denies at its deadline",
                topic,
                self._reply_send_timeout_s,
            )
            return
        except Exception as exc:
            log.warning("the reply on %s could not be sent: %s", topic, exc)
            return
        await delivery


class _Slot:
    """One batch's place among the batches in flight, given back once (whichever comes first:
    its requests are decided, or the batch is done)."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    def released(self, _: object) -> None:
        """`release`, as a done callback."""
        self.release()
