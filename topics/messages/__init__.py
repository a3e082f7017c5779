"""Every message that travels on Podium's topics: frozen, keyword-only msgspec Structs.

This package is the wire contract, one module per topic. New fields get defaults; names are never
reused. The JSON Schemas under `topics/schemas/` are generated from these Structs
(`make schemas`) and a test fails when they drift. Every message is keyed by `task_id` on the
topic named beside it.
"""

from topics.messages._base import (
    SCHEMA_VERSION,
    JSONValue,
    Message,
    Name,
    TaskId,
    TaskInput,
    utcnow,
)
from topics.messages.approvals import AnyApprovalRecord, ApprovalDecision, ApprovalRequest
from topics.messages.controls import CONTROL_KINDS, Control, ControlState, ControlTarget
from topics.messages.dead_letters import DeadLetter
from topics.messages.events import Event, EventType, P, Payload, event, event_id_of, payload_of
from topics.messages.ledger_anchors import LedgerAnchor
from topics.messages.manifest_records import ManifestRecord
from topics.messages.payloads import (
    CONTRACT_VIOLATION,
    CONTRACT_WARNING,
    PAYLOAD_TYPES,
    ApprovalDecidedData,
    ApprovalRequestedData,
    ContractEventData,
    ContractEventKind,
    ControlChangedData,
    MessageDeadLetteredData,
    ModelCalledData,
    PolicyDecidedData,
    StepCompletedData,
    StepFailedData,
    StepStartedData,
    TaskCompletedData,
    TaskFailedData,
    TaskRequestedData,
    TaskStartedData,
    ToolCalledData,
)
from topics.messages.policy import Action, AuthorizationRequest, Decision, DecisionKind
from topics.messages.results import AnyResult, TaskCompleted, TaskFailed, TaskResult
from topics.messages.steps import (
    ApprovalResume,
    ApprovalVerdict,
    Delegation,
    DelegationResume,
    JoinTicket,
    PathUsage,
    Resume,
    Step,
    StepOutput,
    ToolAnswer,
)
from topics.messages.tasks import TaskRequested

PUBLIC_MESSAGES: tuple[type[Message], ...] = (
    TaskRequested,
    Step,
    AuthorizationRequest,
    Decision,
    Event,
    TaskCompleted,
    TaskFailed,
    DeadLetter,
    ApprovalRequest,
    ApprovalDecision,
    ManifestRecord,
    LedgerAnchor,
    Control,
)
"""The messages that have a checked-in JSON Schema (`topics/schemas/<name>.json`)."""

__all__ = [
    "CONTRACT_VIOLATION",
    "CONTRACT_WARNING",
    "CONTROL_KINDS",
    "PAYLOAD_TYPES",
    "PUBLIC_MESSAGES",
    "SCHEMA_VERSION",
    "Action",
    "AnyApprovalRecord",
    "AnyResult",
    "ApprovalDecidedData",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalRequestedData",
    "ApprovalResume",
    "ApprovalVerdict",
    "AuthorizationRequest",
    "ContractEventData",
    "ContractEventKind",
    "Control",
    "ControlChangedData",
    "ControlState",
    "ControlTarget",
    "DeadLetter",
    "Decision",
    "DecisionKind",
    "Delegation",
    "DelegationResume",
    "Event",
    "EventType",
    "JSONValue",
    "JoinTicket",
    "LedgerAnchor",
    "ManifestRecord",
    "Message",
    "MessageDeadLetteredData",
    "ModelCalledData",
    "Name",
    "P",
    "PathUsage",
    "Payload",
    "PolicyDecidedData",
    "Resume",
    "Step",
    "StepCompletedData",
    "StepFailedData",
    "StepOutput",
    "StepStartedData",
    "TaskCompleted",
    "TaskCompletedData",
    "TaskFailed",
    "TaskFailedData",
    "TaskId",
    "TaskInput",
    "TaskRequested",
    "TaskRequestedData",
    "TaskResult",
    "TaskStartedData",
    "ToolAnswer",
    "ToolCalledData",
    "event",
    "event_id_of",
    "payload_of",
    "utcnow",
]
