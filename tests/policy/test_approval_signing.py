"""Approval decisions count only when a trusted approver key signed them (no broker needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from policy_service.approval_book import ApprovalBook
from policy_service.approval_signing import is_trusted, sign_decision
from policy_service.keys import generate, parse_signing_key, parse_verify_keys
from topics.messages import (
    Action,
    ApprovalDecision,
    ApprovalRequest,
    AuthorizationRequest,
    Step,
)

APPROVER = parse_signing_key(generate("approver-1")[0])
TRUSTED = {APPROVER.key_id: APPROVER.verify_key()}
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def decision(**fields: object) -> ApprovalDecision:
    values: dict[str, object] = {
        "approval_id": "apr-1",
        "task_id": "t-1",
        "decision": "granted",
        "decided_by": "alice",
        "reason": "checked",
        "decided_at": AT,
        **fields,
    }
    return ApprovalDecision(**values)  # type: ignore[arg-type]


def request() -> ApprovalRequest:
    call = AuthorizationRequest(
        request_id="r-1",
        task_id="t-1",
        system="s",
        agent="a",
        step_id="t-1/a",
        action=Action.TOOL_CALL,
        tool="wire-money",
        reply_to="replies",
        deadline=AT,
    )
    step = Step(task_id="t-1", system="s", agent="a", step_id="t-1/a", task_input="x")
    return ApprovalRequest(
        approval_id="apr-1",
        task_id="t-1",
        system="s",
        agent="a",
        step=step,
        request=call,
        expires_at=AT + timedelta(hours=1),
    )


def test_a_signed_decision_is_trusted_and_carries_its_key_id() -> None:
    signed = sign_decision(APPROVER, decision())
    assert signed.key_id == "approver-1" and signed.signature
    assert is_trusted(signed, TRUSTED)


@pytest.mark.parametrize(
    "change",
    [
        {"approval_id": "apr-2"},
        {"task_id": "t-2"},
        {"decision": "denied"},
        {"decided_by": "mallory"},
        {"reason": "other"},
        {"decided_at": AT + timedelta(seconds=1)},
        {"key_id": "approver-2"},
    ],
)
def test_any_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    altered = msgspec.structs.replace(sign_decision(APPROVER, decision()), **change)
    assert not is_trusted(altered, TRUSTED)


def test_unsigned_foreign_and_garbled_decisions_are_not_trusted() -> None:
    assert not is_trusted(decision(), TRUSTED)
    mallory = parse_signing_key(generate("approver-1")[0])  # the same id, another key
    assert not is_trusted(sign_decision(mallory, decision()), TRUSTED)
    other = parse_signing_key(generate("mallory")[0])
    assert not is_trusted(sign_decision(other, decision()), TRUSTED)
    garbled = msgspec.structs.replace(sign_decision(APPROVER, decision()), signature="@@@")
    assert not is_trusted(garbled, TRUSTED)
    assert not is_trusted(sign_decision(APPROVER, decision()), {})


def test_the_book_keeps_the_first_trusted_decision_and_drops_the_rest() -> None:
    book = ApprovalBook(TRUSTED)
    book.apply(decision(decision="denied"), 0)  # early, unsigned: dropped, not kept for later
    book.apply(request(), 0)
    book.apply(decision(), 0)
    entry = book.get("apr-1")
    assert entry is not None and entry.status == "pending"
    assert list(book.untrusted) == ["apr-1", "apr-1"]
    book.apply(sign_decision(APPROVER, decision()), 0)
    book.apply(sign_decision(APPROVER, decision(decision="denied")), 0)
    assert entry.status == "granted"


def test_approver_keys_parse_up_to_four() -> None:
    texts = [generate(f"approver-{i}")[1] for i in range(5)]
    assert len(parse_verify_keys(",".join(texts[:4]), at_most=4)) == 4
    with pytest.raises(ValueError, match="at most 4"):
        parse_verify_keys(",".join(texts), at_most=4)
