"""`podium.approvals`: parked steps waiting for a person, and the decisions on them."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec

from topics.messages._base import JSONValue, Message, utcnow
from topics.messages.policy import AuthorizationRequest
from topics.messages.steps import Step


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
    """A person's (or the clock's) decision on a parked step, signed by its approver.

    `signature` is the Ed25519 signature, by the approver key `key_id`, of every other field
    (`policy_service/approval_signing.py`); the services count only decisions whose key they
    trust, so a decision written by anyone else who can reach the topic decides nothing."""

    topic_doc: ClassVar[str] = "podium.approvals"

    approval_id: str
    task_id: str
    decision: Literal["granted", "denied", "expired"]
    decided_by: str = ""
    reason: str = ""
    decided_at: datetime = msgspec.field(default_factory=utcnow)
    key_id: str = ""
    signature: str = ""


AnyApprovalRecord = ApprovalRequest | ApprovalDecision
