"""Every message that travels on Podium's topics: frozen, keyword-only msgspec Structs.

This module is the wire contract. New fields get defaults; names are never reused. The JSON
Schemas under `topics/schemas/` are generated from these Structs (`python -m topics.schemas`) and a
test fails when they drift. Every message is keyed by `task_id` on the topic named beside it.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION = 1
"""The schema version every message carries, in the body and in the `podium-schema-version`
header. A consumer rejects (dead-letters) a message whose major version it does not know."""

TaskId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$",
        description="Unique id of the task, chosen by the submitter; the Kafka key of every "
        "message of the task. Letters, digits and ._:@/- (at most 200 characters).",
    ),
]
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A manifest name (system, agent, tool, model endpoint).",
    ),
]
JSONValue = Any
TaskInput = Annotated[
    str | dict[str, JSONValue],
    Meta(description="The task's input: a text, or a JSON object."),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Message(Struct, frozen=True, kw_only=True):
    """Base of every wire message."""

    topic_doc: ClassVar[str] = ""

    schema_version: Annotated[int, Meta(ge=1, description="Wire schema version.")] = SCHEMA_VERSION


# --- podium.tasks -------------------------------------------------------------------------------


class TaskRequested(Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request to run a task through an applied system. Written by any service."""

    topic_doc: ClassVar[str] = "podium.tasks"

    task_id: TaskId
    system: Name
    input: TaskInput
    submitted_at: Annotated[
        datetime | None, Meta(description="When the task was submitted (RFC 3339).")
    ] = None
    timeout_s: (
        Annotated[
            float,
            Meta(gt=0, le=86400, description="Deadline of the task, seconds after submission."),
        ]
        | None
    ) = None
    submitted_by: Annotated[str, Meta(max_length=200, description="Who submitted it.")] = ""
    labels: Annotated[
        dict[str, str], Meta(description="Free-form labels, stored with the task.")
    ] = {}


# --- podium.agent.<agent> ------------------------------------------------------------------------


class StepOutput(Struct, frozen=True, kw_only=True):
    """The output of a finished step, handed downstream."""

    agent: Name
    step_id: Annotated[str, Meta(description="The step that produced it.")]
    output: Annotated[str, Meta(description="The agent's final answer.")]
    outcome: Annotated[
        str | None, Meta(description="The outcome label the agent returned, if any.")
    ] = None


class Delegation(Struct, frozen=True, kw_only=True):
    """Where a delegated worker's result returns: the supervisor's parked conversation."""

    supervisor: Annotated[str, Meta(description="The supervisor agent.")]
    supervisor_step_id: Annotated[str, Meta(description="The supervisor's step waiting for it.")]
    tool_call_id: Annotated[str, Meta(description="The `delegate` call this answers.")]
    state: Annotated[
        dict[str, JSONValue], Meta(description="The supervisor's parked conversation.")
    ] = {}


class PathUsage(Struct, frozen=True, kw_only=True):
    """Model usage accumulated along a task's path up to a step (branches summed at a join)."""

    tokens: Annotated[int, Meta(ge=0, description="Input plus output tokens.")] = 0
    cost_usd: Annotated[
        float, Meta(ge=0, description="Cost of the priced calls (see `unpriced_calls`).")
    ] = 0.0
    priced_calls: Annotated[int, Meta(ge=0, description="Calls whose cost is known.")] = 0
    unpriced_calls: Annotated[
        int, Meta(ge=0, description="Calls whose price is unknown (not in `cost_usd`).")
    ] = 0

    def __add__(self, other: PathUsage) -> PathUsage:
        return PathUsage(
            tokens=self.tokens + other.tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            priced_calls=self.priced_calls + other.priced_calls,
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
        )

    def __sub__(self, other: PathUsage) -> PathUsage:
        """What `self` added to `other` (never below zero)."""
        return PathUsage(
            tokens=max(0, self.tokens - other.tokens),
            cost_usd=max(0.0, self.cost_usd - other.cost_usd),
            priced_calls=max(0, self.priced_calls - other.priced_calls),
            unpriced_calls=max(0, self.unpriced_calls - other.unpriced_calls),
        )


class JoinTicket(Struct, frozen=True, kw_only=True):
    """Marks a branch of a fan-out, so the join can tell when every branch has arrived."""

    join_id: Annotated[str, Meta(description="Unique per fan-out: the fanning step's id.")]
    branches: Annotated[int, Meta(ge=1, description="How many branches the join waits for.")]
    branch: Annotated[str, Meta(description="This branch's name (the agent it ran through).")]
    join_agent: Annotated[
        str, Meta(description="The agent that joins the branches; empty when none is known.")
    ] = ""
    base_usage: Annotated[
        PathUsage,
        Meta(description="The usage on the path when it fanned out; the join counts it once."),
    ] = msgspec.field(default_factory=PathUsage)


class Step(Message, frozen=True, kw_only=True):
    """One unit of work for an agent role. Written by the dispatcher and by actors."""

    topic_doc: ClassVar[str] = "podium.agent.<agent>"

    task_id: TaskId
    system: Name
    agent: Name
    step_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=400,
            description="Deterministic id of this step within the task; with `task_id` it names "
            "the transition exactly once.",
        ),
    ]
    task_input: TaskInput
    upstream: Annotated[
        list[StepOutput], Meta(description="Outputs this step receives from upstream.")
    ] = []
    iterations: Annotated[
        dict[str, int],
        Meta(description="How often each agent has run on this path of the task, by agent."),
    ] = {}
    model_calls: Annotated[
        dict[str, int],
        Meta(description="How many model calls each agent has made on this path, by agent."),
    ] = {}
    join: JoinTicket | None = None
    delegation: Delegation | None = None
    instruction: Annotated[
        str | None, Meta(description="The supervisor's instruction, for a delegated step.")
    ] = None
    resume: Annotated[
        dict[str, JSONValue] | None,
        Meta(description="State of a parked step that resumes (delegation or approval)."),
    ] = None
    attempt: Annotated[int, Meta(ge=0, description="Retry attempt of this step, from 0.")] = 0
    deadline: Annotated[datetime | None, Meta(description="The task's deadline.")] = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    usage: Annotated[
        PathUsage,
        Meta(
            description="Model usage on the task's path before this run of the step (a resumed "
            "step's earlier calls included)."
        ),
    ] = msgspec.field(default_factory=PathUsage)
    join_stack: Annotated[
        list[JoinTicket],
        Meta(
            description="Every fan-out this step is a branch of, outermost first; the last is "
            "`join`. Empty from older writers: then `join` alone is the stack."
        ),
    ] = []
    abandoned: Annotated[
        str | None,
        Meta(
            description="Set on a notice to a join, not a step to run: this branch (`join`) "
            "failed with this error, so the join clears its waiting state and does not run."
        ),
    ] = None


# --- podium.policy.requests and reply topics ---------------------------------------------------


class Action(enum.StrEnum):
    MODEL_CALL = "model_call"
    TOOL_CALL = "tool_call"


class AuthorizationRequest(Message, frozen=True, kw_only=True):
    """Asks the policy service whether an agent may make one model call or tool call."""

    topic_doc: ClassVar[str] = "podium.policy.requests"

    request_id: Annotated[str, Meta(min_length=1, max_length=200, description="Correlation id.")]
    task_id: TaskId
    system: Name
    agent: Name
    step_id: str = ""
    action: Action
    model: Annotated[str | None, Meta(description="The model, for a model call.")] = None
    endpoint: Annotated[str | None, Meta(description="The ModelEndpoint, for a model call.")] = None
    tool: Annotated[str | None, Meta(description="The tool, for a tool call.")] = None
    arguments_digest: Annotated[
        str, Meta(description="SHA-256 of the canonical tool arguments (never the arguments).")
    ] = ""
    estimated_tokens: Annotated[int, Meta(ge=0, description="Tokens the call may use.")] = 0
    step_number: Annotated[
        int, Meta(ge=0, description="How many model turns this step has taken so far.")
    ] = 0
    call_index: Annotated[int, Meta(ge=0, description="Index of the call within the step.")] = 0
    approval_id: Annotated[
        str | None, Meta(description="A granted approval this call relies on, when resuming.")
    ] = None
    reply_to: Annotated[str, Meta(min_length=1, description="The topic to answer on.")]
    deadline: Annotated[datetime, Meta(description="After this, the answer is worthless.")]


class DecisionKind(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    APPROVAL_REQUIRED = "approval_required"


class Decision(Message, frozen=True, kw_only=True):
    """The policy service's answer. Anything but a well-signed `allow` means no."""

    topic_doc: ClassVar[str] = "reply topic of the requester"

    request_id: str
    task_id: str
    decision: Annotated[
        str, Meta(description="allow | deny | approval_required; anything else counts as deny.")
    ]
    rule: Annotated[str, Meta(description="The rule that decided, e.g. `denied_tools`.")] = ""
    policy: Annotated[str, Meta(description="The manifest that holds the rule.")] = ""
    reason: Annotated[str, Meta(description="Why, for a person.")] = ""
    approval_id: Annotated[
        str | None, Meta(description="For approval_required: the approval to wait for.")
    ] = None
    reserved_tokens: Annotated[int, Meta(ge=0, description="Budget reserved for the call.")] = 0
    reserved_usd: Annotated[float, Meta(ge=0, description="Budget reserved for the call.")] = 0.0
    decided_at: datetime = msgspec.field(default_factory=utcnow)
    signature: Annotated[
        str, Meta(description="Hex HMAC-SHA256 of the decision without this field.")
    ] = ""
    approval_expires_at: Annotated[
        datetime | None,
        Meta(description="For approval_required: when the approval expires as denied."),
    ] = None


# --- podium.events ----------------------------------------------------------------------------


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


class TaskRequestedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.TASK_REQUESTED
    input: TaskInput
    submitted_by: str = ""
    labels: dict[str, str] = {}


class TaskStartedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.TASK_STARTED
    entry: list[str]
    deadline: datetime | None = None


class StepStartedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.STEP_STARTED
    upstream: list[str] = []
    iteration: int = 0


class ModelCalledData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.MODEL_CALLED
    request_id: Annotated[str, Meta(description="The authorization request that allowed it.")]
    provider: str
    endpoint: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: Annotated[
        float | None, Meta(description="Cost of the call; null when the price is unknown.")
    ] = None
    price_source: Annotated[
        str, Meta(description="genai-prices | endpoint | unknown: where the price came from.")
    ] = "unknown"
    call_index: int = 0
    status: Literal["ok", "error"] = "ok"
    error: str = ""


class ToolCalledData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.TOOL_CALLED
    request_id: str
    tool: str
    arguments: Annotated[
        dict[str, JSONValue], Meta(description="The arguments, with secrets redacted.")
    ] = {}
    status: Literal["ok", "error", "denied"] = "ok"
    latency_ms: float = 0.0
    idempotency_key: Annotated[str, Meta(description="task_id/step_id/call_index")] = ""
    error: str = ""


class PolicyDecidedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.POLICY_DECIDED
    request_id: str
    action: str
    model: str | None = None
    tool: str | None = None
    decision: str
    rule: str = ""
    policy: str = ""
    reason: str = ""
    reserved_tokens: int = 0
    reserved_usd: float = 0.0


class ApprovalRequestedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.APPROVAL_REQUESTED
    approval_id: str
    action: str
    tool: str | None = None
    model: str | None = None
    arguments: dict[str, JSONValue] = {}
    reason: str = ""
    expires_at: datetime


class ApprovalDecidedData(Payload, frozen=True, kw_only=True):
    """The payload of approval.granted, approval.denied and approval.expired."""

    event_type: ClassVar[EventType] = EventType.APPROVAL_GRANTED
    approval_id: str
    decided_by: str = ""
    reason: str = ""


class StepCompletedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.STEP_COMPLETED
    output: str
    outcome: str | None = None
    next: Annotated[list[str], Meta(description="The agents the step routed to.")] = []
    model_turns: int = 0
    loop_exit: Annotated[
        str | None, Meta(description="exit_when | max_iterations, when this step ended a loop.")
    ] = None


class StepFailedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.STEP_FAILED
    error: str
    retryable: bool = False
    will_retry: bool = False


class TaskCompletedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.TASK_COMPLETED
    output: str


class TaskFailedData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.TASK_FAILED
    error: str


class MessageDeadLetteredData(Payload, frozen=True, kw_only=True):
    event_type: ClassVar[EventType] = EventType.MESSAGE_DEAD_LETTERED
    topic: str
    dlq_topic: str
    partition: int
    offset: int
    reason: str


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


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    str(cls.event_type): cls
    for cls in (
        TaskRequestedData,
        TaskStartedData,
        StepStartedData,
        ModelCalledData,
        ToolCalledData,
        PolicyDecidedData,
        ApprovalRequestedData,
        ApprovalDecidedData,
        StepCompletedData,
        StepFailedData,
        TaskCompletedData,
        TaskFailedData,
        MessageDeadLetteredData,
    )
}
for _approval in (EventType.APPROVAL_DENIED, EventType.APPROVAL_EXPIRED):
    PAYLOAD_TYPES[str(_approval)] = ApprovalDecidedData


P = TypeVar("P", bound=Payload)


def payload_of(ev: Event, cls: type[P]) -> P:
    """Read an event's payload as its typed Struct (raises msgspec.ValidationError)."""
    return msgspec.convert(ev.data, type=cls)


# --- podium.results ---------------------------------------------------------------------------


class TaskResult(Message, frozen=True, kw_only=True, tag_field="status"):
    task_id: TaskId
    system: str
    finished_at: datetime = msgspec.field(default_factory=utcnow)
    cost_usd: Annotated[float | None, Meta(description="Known cost of the task's model calls.")] = (
        None
    )
    total_tokens: int = 0
    unpriced_calls: Annotated[
        int,
        Meta(
            ge=0,
            description="Model calls whose price is unknown: `cost_usd` counts only the priced "
            "ones (null when none was priced).",
        ),
    ] = 0


class TaskCompleted(TaskResult, frozen=True, kw_only=True, tag="succeeded"):
    """The task finished; `output` is the final agent's answer."""

    topic_doc: ClassVar[str] = "podium.results"

    output: str


class TaskFailed(TaskResult, frozen=True, kw_only=True, tag="failed"):
    """The task failed; `error` says why, for a person."""

    topic_doc: ClassVar[str] = "podium.results"

    error: str
    failed_agent: str = ""


AnyResult = TaskCompleted | TaskFailed


# --- <topic>.dlq ------------------------------------------------------------------------------


class DeadLetter(Message, frozen=True, kw_only=True):
    """A message a consumer could not process, with the reason. Written to `<topic>.dlq`."""

    topic_doc: ClassVar[str] = "<topic>.dlq"

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: Annotated[bytes, Meta(description="The original bytes (base64 in JSON).")]
    headers: dict[str, str] = {}
    reason: Annotated[str, Meta(description="Why it could not be processed.")]
    service: str = ""
    at: datetime = msgspec.field(default_factory=utcnow)


# --- podium.approvals -------------------------------------------------------------------------


class ApprovalRequest(Message, frozen=True, kw_only=True, tag_field="record", tag="requested"):
    """A parked step waiting for a person: the step and the call it wants to make."""

    topic_doc: ClassVar[str] = "podium.approvals"

    approval_id: str
    task_id: str
    system: str
    agent: str
    step: Step
    request: AuthorizationRequest
    arguments: dict[str, JSONValue] = {}
    reason: str = ""
    requested_at: datetime = msgspec.field(default_factory=utcnow)
    expires_at: datetime


class ApprovalDecision(Message, frozen=True, kw_only=True, tag_field="record", tag="decided"):
    """A person's (or the clock's) decision on a parked step."""

    topic_doc: ClassVar[str] = "podium.approvals"

    approval_id: str
    task_id: str
    decision: Literal["granted", "denied", "expired"]
    decided_by: str = ""
    reason: str = ""
    decided_at: datetime = msgspec.field(default_factory=utcnow)


AnyApprovalRecord = ApprovalRequest | ApprovalDecision


# --- podium.manifests (compacted) -------------------------------------------------------------


class ManifestRecord(Message, frozen=True, kw_only=True):
    """One applied resource or compiled routing table, keyed `Kind/name`; a tombstone deletes."""

    topic_doc: ClassVar[str] = "podium.manifests (compacted)"

    kind: str
    name: str
    generation: Annotated[int, Meta(ge=1, description="Bumped on every change of the spec.")]
    digest: Annotated[str, Meta(description="SHA-256 of the canonical resource.")]
    resource: Annotated[dict[str, JSONValue], Meta(description="The resource as applied.")]
    source: Annotated[str, Meta(description="file:line it was applied from.")] = ""
    applied_at: datetime = msgspec.field(default_factory=utcnow)


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
)
