"""Everything about the bus: topic names, wire messages, codec, Kafka clients, routing tables."""

from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.messages import (
    SCHEMA_VERSION,
    Action,
    AuthorizationRequest,
    Decision,
    DecisionKind,
    Event,
    EventType,
    Step,
    StepOutput,
    TaskCompleted,
    TaskFailed,
    TaskRequested,
)
from topics.names import TopicNames

__all__ = [
    "SCHEMA_VERSION",
    "Action",
    "AuthorizationRequest",
    "Decision",
    "DecisionKind",
    "Event",
    "EventType",
    "MalformedMessage",
    "Step",
    "StepOutput",
    "TaskCompleted",
    "TaskFailed",
    "TaskRequested",
    "TopicNames",
    "decode",
    "encode",
    "headers_for",
]
