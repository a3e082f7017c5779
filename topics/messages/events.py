"""`podium.events`: the envelope of everything that happens, and how to wrap and read a payload.

The typed payloads of `Event.data` live in `topics.messages.payloads`.
"""

from __future__ import annotations

import builtins
import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec
from msgspec import Meta, Struct

from topics.messages._base import JSONValue, Message, TaskId, utcnow


class EventType(enum.StrEnum):
    TASK_REQUESTED = "task.requested"
    TASK_STARTED = "task.started"
    STEP_STARTED = "step.started"
    MODEL_CALLED = "model.called"
    TOOL_CALLED = "tool.called"
    POLICY_DECIDED = "policy.decided"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_GRANTED = "approval.granted"
    APPROVAL_DENIED = "approval.denied"
    APPROVAL_EXPIRED = "approval.expired"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    MESSAGE_DEAD_LETTERED = "message.dead_lettered"
    CONTROL_PAUSED = "control.paused"
    CONTROL_RESUMED = "control.resumed"
    CONTROL_THROTTLED = "control.throttled"
    AGENT_CONTRACT = "agent.contract"


class Event(Message, frozen=True, kw_only=True):
    """The envelope of everything that happens. `data` holds the type's payload (below).

    The `type` is a string, not the enum, so that a consumer stores a type it does not know yet.
    """

    topic_doc: ClassVar[str] = "podium.events"

    event_id: Annotated[str, Meta(min_length=1, max_length=200, description="Unique; dedupe key.")]
    type: Annotated[str, Meta(min_length=1, max_length=100, description="An EventType value.")]
    task_id: TaskId
    system: str = ""
    agent: str = ""
    step_id: str = ""
    attempt: int = 0
    at: datetime = msgspec.field(default_factory=utcnow)
    trace_id: Annotated[str, Meta(description="W3C trace id, hex.")] = ""
    span_id: Annotated[str, Meta(description="W3C span id, hex.")] = ""
    source: Annotated[str, Meta(description="The service that wrote it.")] = ""
    data: Annotated[dict[str, JSONValue], Meta(description="The payload of the type.")] = {}

    def payload(self, cls: builtins.type[P]) -> P:
        """`data` as its typed payload, e.g. `ev.payload(ModelCalledData)` (raises
        msgspec.ValidationError). Decode once and pass the typed value on; the wire keeps `data`
        a plain object so that a consumer stores a type it does not know yet."""
        return msgspec.convert(self.data, type=cls)


class Payload(Struct, frozen=True, kw_only=True):
    """Base of the typed payloads carried in `Event.data`."""

    event_type: ClassVar[EventType]


P = TypeVar("P", bound=Payload)


def event_id_of(*parts: str | int) -> str:
    """The one event-id scheme: the facts that make an event unique, joined by `:`.

    A rewrite of the same event (a retried step, a redelivered request) carries the same id, and
    the ledger stores it once. The ids in use:

    - `<task_id>:<step_id>:<event type or suffix>`: an event of a step (actors);
    - `policy:<request_id>:<request digest, 32 hex>`: the decision on one authorization request;
    - `approval:<approval_id>:<granted|denied|expired>`: the decision on an approval;
    - `dlq:<topic>:<partition>:<offset>`: a dead-lettered record (policy service, ledger);
    - `result:<task_id>:<digest of the result>`: a task result read from `podium.results`;
    - `control:<partition>:<offset>`: an operator's control read from `podium.controls`.

    Without parts, a random id: for an event that is new each time it happens (a model call, a
    tool call), which no rewrite repeats.
    """
    if not parts:
        return uuid.uuid4().hex
    return ":".join(str(part) for part in parts)


def event(
    payload: Payload | dict[str, JSONValue],
    *,
    event_id: str,
    task_id: str,
    type: EventType | str | None = None,
    check: bool = False,
    **envelope: Any,
) -> Event:
    """The one event factory: wrap a payload in the envelope.

    `payload` is a typed Payload, or an already-built `data` object (then `type` is required);
    `type` overrides the payload's own (approvals share one payload). The Struct constructor does
    not check the field constraints; `check=True` does (raises msgspec.ValidationError), for an
    event built from untrusted parts (a record's key)."""
    if isinstance(payload, Payload):
        data: dict[str, JSONValue] = msgspec.to_builtins(payload)
        kind = str(type or payload.event_type)
    elif type is None:
        raise TypeError("an event built from a data object needs its `type`")
    else:
        data, kind = payload, str(type)
    ev = Event(event_id=event_id, type=kind, task_id=task_id, data=data, **envelope)
    if check:
        return msgspec.convert(msgspec.to_builtins(ev), type=Event)
    return ev


def payload_of(ev: Event, cls: type[P]) -> P:
    """Read an event's payload as its typed Struct (raises msgspec.ValidationError); the same as
    `ev.payload(cls)`."""
    return ev.payload(cls)
