"""`podium.policy.requests` and the reply topics: may an agent make this call?"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta

from topics.messages._base import Message, Name, TaskId, utcnow


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
        str,
        Meta(
            description="Hex Ed25519 signature by the policy service of the decision without "
            "this field (`policy_service/signing.py`)."
        ),
    ] = ""
    approval_expires_at: Annotated[
        datetime | None,
        Meta(description="For approval_required: when the approval expires as denied."),
    ] = None
    key_id: Annotated[
        str, Meta(max_length=64, description="The id of the key that signed the decision.")
    ] = ""
    request_digest: Annotated[
        str,
        Meta(
            max_length=64,
            description="SHA-256 (hex) of the request this decision answers; the requester "
            "checks it against the request it sent.",
        ),
    ] = ""
