"""What a batch of consumed messages changes in the ledger: pure functions, no database.

`decode_record` turns one Kafka record into an `Incoming` event (results become `task.result`
events, so the chain covers the output too) or raises `MalformedMessage`. `plan_batch` takes the
batch in arrival order, the event ids already stored and the chains' heads, and returns the new
links, the task updates, the spend deltas and the approval changes, all applied by `store` in
one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from ledger.chain import GENESIS, canonical, link_hash
from topics.codec import decode
from topics.messages import (
    AnyResult,
    ApprovalDecidedData,
    ApprovalRequestedData,
    Event,
    EventType,
    ModelCalledData,
    TaskCompleted,
    TaskCompletedData,
    TaskFailed,
    TaskFailedData,
    TaskRequestedData,
    event,
    event_id_of,
    payload_of,
)

RESULT_EVENT = "task.result"
"""The type under which a `TaskCompleted`/`TaskFailed` from the results topic is chained."""

_STATUS_RANK = {"unknown": 0, "requested": 1, "running": 2}


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed event, with where it came from."""

    event: Event
    body: bytes
    topic: str
    partition: int
    offset: int
    trace: tuple[tuple[str, bytes], ...] = ()
    """The W3C trace context the record carried (`traceparent`/`tracestate` headers)."""


def _normalized(event: Event) -> Event:
    """Times are stored and hashed in UTC (a naive time is taken as UTC)."""
    if event.at.tzinfo is UTC:
        return event  # what the wire format's `Z` decodes to
    at = event.at.replace(tzinfo=UTC) if event.at.tzinfo is None else event.at.astimezone(UTC)
    return event if at == event.at and at.tzinfo is event.at.tzinfo else _with_at(event, at)


def _with_at(event: Event, at: datetime) -> Event:
    return msgspec.structs.replace(event, at=at)


def incoming(
    event: Event,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
    trace: tuple[tuple[str, bytes], ...] = (),
) -> Incoming:
    event = _normalized(event)
    return Incoming(event, canonical(event), topic, partition, offset, trace)


def decode_event(
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    trace: tuple[tuple[str, bytes], ...] = (),
) -> Incoming:
    return incoming(decode(value, Event), topic, partition, offset, trace)


def decode_result(
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    trace: tuple[tuple[str, bytes], ...] = (),
) -> Incoming:
    result: TaskCompleted | TaskFailed = decode(value, AnyResult)
    digest = hashlib.sha256(value or b"").hexdigest()[:32]
    data = msgspec.to_builtins(result)
    data.pop("task_id", None)
    data.pop("system", None)
    data.pop("schema_version", None)
    ev = event(
        data,
        type=RESULT_EVENT,
        event_id=event_id_of("result", result.task_id, digest),
        task_id=result.task_id,
        system=result.system,
        agent=getattr(result, "failed_agent", ""),
        at=result.finished_at,
        source="results",
    )
    return incoming(ev, topic, partition, offset, trace)


@dataclass(frozen=True, slots=True)
class Link:
    """A new row of the events table."""

    item: Incoming
    seq: int
    prev_hash: str
    hash: str


@dataclass(slots=True)
class TaskDelta:
    task_id: str
    created_at: datetime
    system: str = ""
    status: str = "unknown"
    input: str | None = None
    output: str | None = None
    error: str | None = None
    submitted_by: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    model_calls: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    events: int = 0

    def set_status(self, status: str) -> None:
        if _STATUS_RANK.get(status, 3) >= _STATUS_RANK.get(self.status, 3):
            self.status = status


@dataclass(slots=True)
class SpendDelta:
    calls: int = 0
    unpriced_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


SpendKey = tuple[datetime, str, str, str]


@dataclass(frozen=True, slots=True)
class ApprovalChange:
    approval_id: str
    task_id: str
    status: str
    event: Event
    requested: ApprovalRequestedData | None = None
    decided: ApprovalDecidedData | None = None


@dataclass(slots=True)
class BatchPlan:
    links: list[Link] = field(default_factory=list)
    bases: dict[str, tuple[int, str]] = field(default_factory=dict)
    """The head each task's chain was continued from (what a prepared plan assumed)."""
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    tasks: dict[str, TaskDelta] = field(default_factory=dict)
    spend: dict[SpendKey, SpendDelta] = field(default_factory=dict)
    approvals: list[ApprovalChange] = field(default_factory=list)
    duplicates: int = 0


def cost_decimal(cost: float | None) -> Decimal | None:
    """A float USD amount as an exact decimal of its shortest repr (never invented)."""
    return None if cost is None else Decimal(repr(cost))


def plan_batch(
    batch: Iterable[Incoming],
    stored_ids: set[str],
    heads: Mapping[str, tuple[int, str]],
) -> BatchPlan:
    """Chain the new events in arrival order, skipping those already stored (redeliveries)."""
    plan = BatchPlan()
    seen = set(stored_ids)
    for item in batch:
        ev = item.event
        if ev.event_id in seen:
            plan.duplicates += 1
            continue
        seen.add(ev.event_id)
        head = plan.heads.get(ev.task_id)
        if head is None:
            head = plan.bases[ev.task_id] = heads.get(ev.task_id) or (0, GENESIS)
        seq, prev = head
        new_hash = link_hash(prev, item.body)
        plan.links.append(Link(item, seq + 1, prev, new_hash))
        plan.heads[ev.task_id] = (seq + 1, new_hash)
        _apply(plan, ev)
    return plan


def _apply(plan: BatchPlan, ev: Event) -> None:
    task = plan.tasks.get(ev.task_id)
    if task is None:
        task = plan.tasks[ev.task_id] = TaskDelta(ev.task_id, created_at=ev.at)
    task.created_at = min(task.created_at, ev.at)
    task.events += 1
    if ev.system:
        task.system = ev.system
    try:
        _apply_typed(plan, task, ev)
    except msgspec.ValidationError:
        # A known type whose payload does not match: stored and chained as it is, but it
        # changes no totals (the raw event is in the audit trail for anyone to inspect).
        return


def _apply_typed(plan: BatchPlan, task: TaskDelta, ev: Event) -> None:
    kind = ev.type
    if kind == EventType.TASK_REQUESTED:
        requested = payload_of(ev, TaskRequestedData)
        task.input = json.dumps(requested.input, ensure_ascii=False)
        task.submitted_by = requested.submitted_by
        task.set_status("requested")
    elif kind == EventType.TASK_COMPLETED:
        task.output = payload_of(ev, TaskCompletedData).output
        task.finished_at = ev.at
        task.set_status("succeeded")
    elif kind == EventType.TASK_FAILED:
        task.error = payload_of(ev, TaskFailedData).error
        task.finished_at = ev.at
        task.set_status("failed")
    elif kind == RESULT_EVENT:
        result: Any = msgspec.convert(
            {**ev.data, "task_id": ev.task_id, "system": ev.system}, type=AnyResult
        )
        if isinstance(result, TaskCompleted):
            task.output = result.output
            task.set_status("succeeded")
        else:
            task.error = result.error
            task.set_status("failed")
        task.finished_at = ev.at
    elif kind in (EventType.TASK_STARTED, EventType.STEP_STARTED):
        task.started_at = ev.at if task.started_at is None else min(task.started_at, ev.at)
        task.set_status("running")
    elif kind == EventType.MODEL_CALLED:
        _apply_model_call(plan, task, ev, payload_of(ev, ModelCalledData))
    elif kind == EventType.APPROVAL_REQUESTED:
        requested_approval = payload_of(ev, ApprovalRequestedData)
        plan.approvals.append(
            ApprovalChange(
                requested_approval.approval_id,
                ev.task_id,
                "pending",
                ev,
                requested=requested_approval,
            )
        )
    elif kind in (
        EventType.APPROVAL_GRANTED,
        EventType.APPROVAL_DENIED,
        EventType.APPROVAL_EXPIRED,
    ):
        decided = payload_of(ev, ApprovalDecidedData)
        status = kind.removeprefix("approval.")
        plan.approvals.append(
            ApprovalChange(decided.approval_id, ev.task_id, status, ev, decided=decided)
        )


def _apply_model_call(plan: BatchPlan, task: TaskDelta, ev: Event, call: ModelCalledData) -> None:
    cost = cost_decimal(call.cost_usd)
    hour = ev.at.replace(minute=0, second=0, microsecond=0)
    key = (hour, ev.system, ev.agent, call.model)
    spend = plan.spend.get(key)
    if spend is None:
        spend = plan.spend[key] = SpendDelta()
    for delta in (task, spend):
        if isinstance(delta, TaskDelta):
            delta.model_calls += 1
        else:
            delta.calls += 1
        delta.input_tokens += call.input_tokens
        delta.output_tokens += call.output_tokens
        delta.cached_tokens += call.cached_tokens
        if cost is None:
            delta.unpriced_calls += 1
        else:
            delta.cost_usd += cost
    if task.status in ("unknown", "requested"):
        task.set_status("running")
