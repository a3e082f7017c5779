"""The approvals book: every approval seen on `podium.approvals`, by id (plain data, no Kafka).

The policy service keeps one current (`approval_follower.py`); `approvals.read_book` reads one
for the command line. The first decision of an approval wins, and only a decision signed by a
trusted approver key counts (`approval_signing.py`): one written by anyone else is dropped. The
requests are what anyone wrote on the topic; the approvals the policy service itself issued
(`IssuedApproval`) are recorded in its database (`approval_store.py`), and only those count.
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from policy_service.approval_signing import is_trusted
from policy_service.keys import VerifyKey
from topics.messages import AnyApprovalRecord, ApprovalDecision, ApprovalRequest

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ApprovalEntry:
    request: ApprovalRequest
    partition: int
    decision: ApprovalDecision | None = None

    @property
    def status(self) -> str:
        return "pending" if self.decision is None else self.decision.decision


@dataclass(frozen=True, slots=True)
class IssuedApproval:
    """What the policy service recorded when it issued an approval (plain data)."""

    approval_id: str
    task_id: str
    system: str
    agent: str
    tool: str
    arguments_digest: str
    issued_for: str
    """The request id of the call that was parked."""
    expires_at: datetime
    used_by: str | None = None
    """The request id of the call the approval allowed, once used."""


@dataclass(slots=True)
class ApprovalBook:
    """Every approval seen on the topic, by id; the first trusted decision of an approval wins."""

    trusted: Mapping[str, VerifyKey]
    """The approver keys whose decisions count, by key id."""
    entries: dict[str, ApprovalEntry] = field(default_factory=dict)
    early_decisions: dict[str, ApprovalDecision] = field(default_factory=dict)
    untrusted: deque[str] = field(default_factory=lambda: deque(maxlen=1000))
    """Approval ids of the latest decisions dropped for want of a trusted signature."""

    def apply(self, record: AnyApprovalRecord, partition: int) -> None:
        if isinstance(record, ApprovalDecision) and not is_trusted(record, self.trusted):
            self.untrusted.append(record.approval_id)
            log.warning(
                "dropping a decision on approval %s that no trusted approver signed (key id %r)",
                record.approval_id,
                record.key_id,
            )
            return
        if isinstance(record, ApprovalRequest):
            if record.approval_id in self.entries:
                return
            entry = ApprovalEntry(record, partition)
            entry.decision = self.early_decisions.pop(record.approval_id, None)
            self.entries[record.approval_id] = entry
            return
        existing = self.entries.get(record.approval_id)
        if existing is None:
            self.early_decisions.setdefault(record.approval_id, record)
        elif existing.decision is None:
            existing.decision = record

    def get(self, approval_id: str) -> ApprovalEntry | None:
        return self.entries.get(approval_id)

    def listing(self, status: str = "pending") -> list[ApprovalEntry]:
        found = [e for e in self.entries.values() if status in ("all", e.status)]
        return sorted(found, key=lambda e: e.request.requested_at)

    def due(self, now: datetime, ttl_s: float) -> list[ApprovalEntry]:
        """Pending approvals past their `expires_at` or past `requested_at + ttl_s`."""
        return [
            e
            for e in self.entries.values()
            if e.decision is None
            and (
                e.request.expires_at <= now
                or (now - e.request.requested_at).total_seconds() >= ttl_s
            )
        ]


def new_approval_id() -> str:
    return f"apr-{uuid.uuid4().hex[:20]}"
