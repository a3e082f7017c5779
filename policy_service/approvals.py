"""Human approvals on Kafka: reading the book, and the signed decision on a parked step.

The topic `podium.approvals` (keyed by task_id) is the source of truth: the actor writes an
`ApprovalRequest` holding the parked step; `decide_approval` writes the signed `ApprovalDecision`
and nothing else. The policy service resumes the step (`approval_resumer.py`: the
`approval.granted|denied|expired` event and the resumed step, from `resumption`) once for the
decision its book counts, so a decider needs no access to agent inboxes. The first trusted
decision in the log wins; `decide_approval` makes a second one impossible by fencing: its
transactional id is derived from the approval id, so two deciders of the same approval fence each
other, and the survivor re-reads the log after fencing. The book itself is plain data
(`approval_book.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import msgspec
from aiokafka import ConsumerRecord

from podium.core.errors import PermanentError
from podium.core.settings import KafkaSettings
from policy_service.approval_book import ApprovalBook, ApprovalEntry
from policy_service.approval_signing import sign_decision, signer_trusted
from policy_service.keys import SigningKey, VerifyKeys
from policy_service.settings import APPROVER_KEYS_ENV
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.kafka import ensure_topics, make_producer
from topics.messages import (
    AnyApprovalRecord,
    ApprovalDecidedData,
    ApprovalDecision,
    ApprovalResume,
    ApprovalVerdict,
    Event,
    EventType,
    Step,
    event,
    event_id_of,
    utcnow,
)
from topics.names import TopicNames
from topics.tables import read_table

__all__ = [
    "ApprovalAlreadyDecided",
    "ApprovalBook",
    "ApprovalEntry",
    "ApprovalNotFound",
    "decide_approval",
    "decode_record",
    "list_approvals",
    "read_book",
]

_EVENT_TYPES = {
    "granted": EventType.APPROVAL_GRANTED,
    "denied": EventType.APPROVAL_DENIED,
    "expired": EventType.APPROVAL_EXPIRED,
}


class ApprovalNotFound(PermanentError):
    """No parked step has this approval id."""


class ApprovalAlreadyDecided(PermanentError):
    """The approval was decided before; a decision is final."""


class ApprovalSignerUntrusted(PermanentError):
    """The decider's approver key is not one the policy service trusts: its decision would be
    dropped, and the step it resumed would be refused."""


def decode_record(data: bytes | None) -> AnyApprovalRecord:
    record: AnyApprovalRecord = decode(data, AnyApprovalRecord)
    return record


def _fold_into(book: ApprovalBook) -> Callable[[ConsumerRecord[bytes, bytes]], None]:
    """Applies an approvals record to `book` (an unreadable record changes nothing)."""

    def fold(message: ConsumerRecord[bytes, bytes]) -> None:
        with contextlib.suppress(MalformedMessage):
            book.apply(decode_record(message.value), message.partition)

    return fold


async def read_book(kafka: KafkaSettings, names: TopicNames, trusted: VerifyKeys) -> ApprovalBook:
    """Read the whole approvals topic (committed records) into a book that counts the decisions
    of the `trusted` approver keys only."""
    await ensure_topics(kafka, [names.approvals])
    book = ApprovalBook(trusted)
    await read_table(kafka, names.approvals, _fold_into(book))
    return book


async def list_approvals(
    kafka: KafkaSettings, names: TopicNames, trusted: VerifyKeys, status: str = "pending"
) -> list[ApprovalEntry]:
    """Approvals by status: `pending`, `granted`, `denied`, `expired`, or `all`."""
    return (await read_book(kafka, names, trusted)).listing(status)


async def decide_approval(
    kafka: KafkaSettings,
    names: TopicNames,
    approval_id: str,
    *,
    signer: SigningKey,
    trusted: VerifyKeys,
    granted: bool,
    decided_by: str,
    reason: str = "",
    expired: bool = False,
) -> ApprovalDecision:
    """Decide a pending approval (the policy service then resumes its step); the decision is signed
    with the approver key `signer` (which the policy service must trust for it to count), and
    the book is read with the `trusted` keys, so a forged decision does not block this one.

    Raises `ApprovalSignerUntrusted` (before writing anything) when `signer` is not among the
    `trusted` keys, `ApprovalNotFound` for an unknown id and `ApprovalAlreadyDecided` when a
    decision exists (including one written concurrently by another decider).
    """
    if not signer_trusted(signer, trusted):
        listed = ", ".join(sorted(trusted)) or "none"
        raise ApprovalSignerUntrusted(
            f"approver key {signer.key_id!r} is not trusted by the policy service "
            f"(trusted: {listed}); add its public key to {APPROVER_KEYS_ENV}"
        )
    book = await read_book(kafka, names, trusted)
    entry = book.get(approval_id)
    if entry is None:
        raise ApprovalNotFound(
            f"approval {approval_id!r} is not pending anywhere; `podium approvals` lists them"
        )
    _check_pending(entry)
    producer = make_producer(
        kafka, transactional_id=f"{names.prefix}.approvals.decide.{approval_id}"
    )
    try:
        await producer.start()  # fences any other decider of this approval
        # Re-read the approval's partition after fencing: a decision committed meanwhile shows.
        await _refresh_partition(kafka, names, book, entry.partition)
        _check_pending(entry)
        outcome = "expired" if expired else ("granted" if granted else "denied")
        request = entry.request
        decision = sign_decision(
            signer,
            ApprovalDecision(
                approval_id=approval_id,
                task_id=request.task_id,
                decision=outcome,  # type: ignore[arg-type]
                decided_by=decided_by,
                reason=reason,
                decided_at=utcnow(),
            ),
        )
        async with producer.transaction():
            await producer.send(
                names.approvals,
                key=request.task_id.encode(),
                value=encode(decision),
                headers=headers_for(decision),
            )
        return decision
    finally:
        await producer.stop()


def resumption(entry: ApprovalEntry, decision: ApprovalDecision) -> tuple[Event, Step]:
    """What the decision on `entry` resumes: its `approval.granted|denied|expired` event, and
    the parked step with the verdict (written together by the policy service's resumer)."""
    request = entry.request
    outcome = decision.decision
    ev = event(
        ApprovalDecidedData(
            approval_id=decision.approval_id, decided_by=decision.decided_by, reason=decision.reason
        ),
        type=_EVENT_TYPES[outcome],
        event_id=event_id_of("approval", decision.approval_id, outcome),
        task_id=request.task_id,
        system=request.system,
        agent=request.agent,
        step_id=request.step.step_id,
        attempt=request.step.attempt,
        source="policy",
    )
    parked = request.step.resume
    resumed = msgspec.structs.replace(
        request.step,
        resume=msgspec.structs.replace(
            parked if isinstance(parked, ApprovalResume) else ApprovalResume(),
            approval=ApprovalVerdict(
                approval_id=decision.approval_id,
                decision=outcome,
                decided_by=decision.decided_by,
                reason=decision.reason,
            ),
        ),
    )
    return ev, resumed


def _check_pending(entry: ApprovalEntry) -> None:
    if entry.decision is not None:
        d = entry.decision
        by = f" by {d.decided_by}" if d.decided_by else ""
        raise ApprovalAlreadyDecided(
            f"approval {entry.request.approval_id!r} was already {d.decision}{by} "
            f"at {d.decided_at.isoformat()}"
        )


async def _refresh_partition(
    kafka: KafkaSettings, names: TopicNames, book: ApprovalBook, partition: int
) -> None:
    await read_table(kafka, names.approvals, _fold_into(book), partitions=[partition])
