"""The typed payloads of `Event.data`, one per event type, and the table from type to payload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from msgspec import Meta

from topics.messages._base import JSONValue, TaskInput
from topics.messages.events import EventType, Payload

MAX_CALL_TOKENS = 10**12
"""More tokens than any model call has: a larger count is a forged or broken event (and sums of
such counts would overflow the budgets' and the ledger's 64-bit totals)."""
MAX_CALL_COST_USD = 10**6
"""More dollars than any single model call costs."""

Tokens = Annotated[int, Meta(ge=0, le=MAX_CALL_TOKENS)]
CostUsd = Annotated[float, Meta(ge=0, le=MAX_CALL_COST_USD)]


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
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cached_tokens: Tokens = 0
    latency_ms: Annotated[float, Meta(ge=0)] = 0.0
    cost_usd: Annotated[
        CostUsd | None, Meta(description="Cost of the call; null when the price is unknown.")
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


class ControlChangedData(Payload, frozen=True, kw_only=True):
    """The payload of control.paused, control.resumed and control.throttled: an operator's
    control as read from `podium.controls` (the event's task id is `control:<kind>:<name>`)."""

    event_type: ClassVar[EventType] = EventType.CONTROL_PAUSED
    target: Annotated[str, Meta(description="agent/NAME, system/NAME or tool/NAME.")]
    per_minute: Annotated[int | None, Meta(description="The rate cap of a throttle.")] = None
    reason: str = ""
    set_by: Annotated[str, Meta(description="Who set it; empty for a tombstone.")] = ""
    set_at: datetime | None = None
    partition: int = 0
    offset: Annotated[int, Meta(description="The control's position on `podium.controls`.")] = 0


ContractEventKind = Literal["violation", "warning"]
CONTRACT_VIOLATION: ContractEventKind = "violation"
CONTRACT_WARNING: ContractEventKind = "warning"


class ContractEventData(Payload, frozen=True, kw_only=True):
    """An agent's `execution` contract was violated (Orloj's `agent_contract_violation`), or
    finished with its output markers missing (`contract_warning`)."""

    event_type: ClassVar[EventType] = EventType.AGENT_CONTRACT
    kind: ContractEventKind
    message: str
    turn: Annotated[int, Meta(ge=0, description="Model turns of the step so far.")] = 0
    profile: str = "dynamic"
    on_contract_violation: Annotated[
        str, Meta(description="observe: the step went on; non_retryable_error: it failed.")
    ] = "non_retryable_error"


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
        ControlChangedData,
        ContractEventData,
    )
}
for _approval in (EventType.APPROVAL_DENIED, EventType.APPROVAL_EXPIRED):
    PAYLOAD_TYPES[str(_approval)] = ApprovalDecidedData
for _control in (EventType.CONTROL_RESUMED, EventType.CONTROL_THROTTLED):
    PAYLOAD_TYPES[str(_control)] = ControlChangedData
