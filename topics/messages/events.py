"""`podium.events`: the envelope of everything that happens, and how to wrap and read a payload.

The typed payloads of `Event.data` live in `topics.messages.payloads`.
"""

from __future__ import annotations

import enum
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


class Payload(Struct, frozen=True, kw_only=True):
    """Base of the typed payloads carried in `Event.data`."""

    event_type: ClassVar[EventType]


P = TypeVar("P", bound=Payload)


def event(
    payload: Payload,
    *,
    event_id: str,
    task_id: str,
    type: EventType | None = None,
    **envelope: Any,
) -> Event:
    """Wrap a typed payload in the envelope (`type` overrides the payload's own, for approvals)."""
    return Event(
        event_id=event_id,
        type=str(type or payload.event_type),
        task_id=task_id,
        data=msgspec.to_builtins(payload),
        **envelope,
    )


def payload_of(ev: Event, cls: type[P]) -> P:
    """Read an event's payload as its typed Struct (raises msgspec.ValidationError)."""
    return msgspec.convert(ev.data, type=cls)
