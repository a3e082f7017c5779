"""Decision signatures, the keys and their settings, and the requester's checks."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from podium.core.settings import ConfigurationError
from policy_service.client import arguments_digest
from policy_service.keys import generate, parse_signing_key, parse_verify_keys
from policy_service.settings import (
    ApproverSettings,
    PolicySettings,
    resolve_approver_keys,
    resolve_approver_signing_key,
    resolve_decision_keys,
    resolve_signing_key,
    resolve_verify_keys,
)
from policy_service.signing import request_digest, sign_decision, verify_decision
from topics.codec import decode, encode
from topics.messages import Action, AuthorizationRequest, Decision

SIGNING, VERIFY = generate("k1")
KEY = parse_signing_key(SIGNING)
PUBLIC = parse_verify_keys(VERIFY)


def request(**fields: object) -> AuthorizationRequest:
    values: dict[str, object] = {
        "request_id": "r",
        "task_id": "t",
        "system": "report",
        "agent": "researcher",
        "step_id": "s1",
        "action": Action.TOOL_CALL,
        "tool": "send-email",
        "arguments_digest": arguments_digest({"to": "someone"}),
        "call_index": 0,
        "reply_to": "podium.replies.actor-1",
        "deadline": datetime(2030, 1, 1, tzinfo=UTC),
    }
    values.update(fields)
    return AuthorizationRequest(**values)  # type: ignore[arg-type]


def test_signature_survives_the_wire_and_detects_tampering() -> None:
    signed = sign_decision(
        Decision(request_id="r", task_id="t", decision="allow", reserved_usd=0.1),
        KEY,
        request_digest="d" * 64,
    )
    assert signed.key_id == "k1" and signed.request_digest == "d" * 64
    received: Decision = decode(encode(signed), Decision)
    assert verify_decision(received, PUBLIC)
    assert not verify_decision(msgspec.structs.replace(received, decision="deny"), PUBLIC)
    assert not verify_decision(msgspec.structs.replace(received, request_digest="e" * 64), PUBLIC)
    assert not verify_decision(msgspec.structs.replace(received, signature=""), PUBLIC)
    assert not verify_decision(msgspec.structs.replace(received, signature="zz"), PUBLIC)
    assert not verify_decision(received, parse_verify_keys(generate("k1")[1])), "another key"
    assert not verify_decision(msgspec.structs.replace(received, key_id="k2"), PUBLIC)


def test_signature_covers_the_approval_expiry() -> None:
    asked = Decision(
        request_id="r",
        task_id="t",
        decision="approval_required",
        approval_id="apr-1",
        approval_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    signed: Decision = decode(encode(sign_decision(asked, KEY, request_digest="")), Decision)
    assert verify_decision(signed, PUBLIC)
    later = msgspec.structs.replace(signed, approval_expires_at=datetime(2031, 1, 1, tzinfo=UTC))
    assert not verify_decision(later, PUBLIC)
    assert not verify_decision(msgspec.structs.replace(signed, approval_expires_at=None), PUBLIC)


def test_two_public_keys_are_valid_during_a_rotation() -> None:
    next_signing, next_verify = generate("k2")
    both = parse_verify_keys(f"{VERIFY},{next_verify}")
    for key in (KEY, parse_signing_key(next_signing)):
        signed = sign_decision(
            Decision(request_id="r", task_id="t", decision="allow"), key, request_digest=""
        )
        assert verify_decision(signed, both)
    with pytest.raises(ValueError, match="at most 2"):
        parse_verify_keys(f"{VERIFY},{next_verify},{generate('k3')[1]}")
    with pytest.raises(ValueError, match="twice"):
        parse_verify_keys(f"{VERIFY},{VERIFY}")


def test_request_digest_covers_every_field_a_decision_depends_on() -> None:
    base = request()
    assert request_digest(base) == request_digest(decode(encode(base), AuthorizationRequest))
    assert request_digest(base) == request_digest(
        msgspec.structs.replace(base, deadline=datetime(2031, 1, 1, tzinfo=UTC))
    )
    for change in (
        {"request_id": "r2"},
        {"task_id": "t2"},
        {"system": "other"},
        {"agent": "writer"},
        {"step_id": "s2"},
        {"action": Action.MODEL_CALL},
        {"model": "mock-small"},
        {"endpoint": "local"},
        {"tool": "shell"},
        {"arguments_digest": arguments_digest({"to": "boss"})},
        {"estimated_tokens": 5},
        {"step_number": 1},
        {"call_index": 1},
        {"approval_id": "apr-1"},
        {"reply_to": "podium.replies.actor-2"},
    ):
        changed = msgspec.structs.replace(base, **change)  # type: ignore[arg-type]
        assert request_digest(changed) != request_digest(base), change


def test_arguments_digest_is_canonical() -> None:
    assert arguments_digest({"a": 1, "b": [1, 2]}) == arguments_digest({"b": [1, 2], "a": 1})
    assert arguments_digest({"a": 1}) != arguments_digest({"a": 2})
    assert arguments_digest(None) == ""


def test_signing_key_sources_and_refusals(tmp_path: Path) -> None:
    assert resolve_signing_key(PolicySettings(signing_key=SIGNING), dev_stack=False).key_id == "k1"
    key_file = tmp_path / "signing.key"
    key_file.write_text(SIGNING + "\n")
    from_file = resolve_signing_key(PolicySettings(signing_key_file=key_file), dev_stack=False)
    assert from_file.verify_key().text() == VERIFY
    with pytest.raises(ConfigurationError, match="PODIUM_POLICY_SIGNING_KEY: no key"):
        resolve_signing_key(PolicySettings(), dev_stack=True)
    with pytest.raises(ConfigurationError, match="both set"):
        resolve_signing_key(
            PolicySettings(signing_key=SIGNING, signing_key_file=key_file), dev_stack=False
        )
    with pytest.raises(ConfigurationError, match="cannot read"):
        resolve_signing_key(PolicySettings(signing_key_file=tmp_path / "nope"), dev_stack=False)
    short = "k1=" + base64.b64encode(b"x" * 16).decode()
    with pytest.raises(ConfigurationError, match="16 bytes; an Ed25519 key is exactly 32"):
        resolve_signing_key(PolicySettings(signing_key=short), dev_stack=False)
    with pytest.raises(ConfigurationError, match="expected <key id>=<base64 key>"):
        resolve_signing_key(PolicySettings(signing_key="just-a-password"), dev_stack=False)
    with pytest.raises(ConfigurationError, match="not base64"):
        resolve_signing_key(PolicySettings(signing_key="k1=@@@@"), dev_stack=False)


def test_dev_keys_are_refused_outside_the_dev_stack() -> None:
    dev_signing, dev_verify = generate("dev-1234")
    assert resolve_signing_key(PolicySettings(signing_key=dev_signing), dev_stack=True).is_dev
    with pytest.raises(ConfigurationError, match="development key"):
        resolve_signing_key(PolicySettings(signing_key=dev_signing), dev_stack=False)
    assert resolve_verify_keys(PolicySettings(verify_keys=dev_verify), dev_stack=True)
    with pytest.raises(ConfigurationError, match=r"PODIUM_POLICY_VERIFY_KEYS: .*development key"):
        resolve_verify_keys(PolicySettings(verify_keys=f"{VERIFY},{dev_verify}"), dev_stack=False)


def test_verify_keys_are_required_and_checked() -> None:
    assert set(resolve_verify_keys(PolicySettings(verify_keys=VERIFY), dev_stack=False)) == {"k1"}
    with pytest.raises(ConfigurationError, match="PODIUM_POLICY_VERIFY_KEYS: no public key"):
        resolve_verify_keys(PolicySettings(), dev_stack=False)
    with pytest.raises(ConfigurationError, match=r"PODIUM_POLICY_VERIFY_KEYS: .*exactly 32"):
        resolve_verify_keys(PolicySettings(verify_keys="k1=AAAA"), dev_stack=False)


def test_the_signing_key_never_shows_in_the_settings_repr() -> None:
    settings = PolicySettings(signing_key=SIGNING)
    assert SIGNING.split("=", 1)[1] not in repr(settings)


def test_approver_keys_are_resolved_like_the_decision_keys(tmp_path: Path) -> None:
    approver_signing, approver_verify = generate("approver-1")
    assert resolve_approver_keys(PolicySettings(), dev_stack=False) == {}
    trusted = resolve_decision_keys(
        PolicySettings(verify_keys=VERIFY, approver_keys=approver_verify), dev_stack=False
    )
    assert set(trusted) == {"k1", "approver-1"}
    key = resolve_approver_signing_key(
        ApproverSettings(signing_key=approver_signing), dev_stack=False
    )
    assert key.key_id == "approver-1"
    key_file = tmp_path / "approver.key"
    key_file.write_text(approver_signing)
    assert (
        resolve_approver_signing_key(
            ApproverSettings(signing_key_file=key_file), dev_stack=False
        ).key_id
        == "approver-1"
    )
    with pytest.raises(ConfigurationError, match="PODIUM_APPROVER_SIGNING_KEY: no key"):
        resolve_approver_signing_key(ApproverSettings(), dev_stack=False)
    dev_signing, dev_verify = generate("dev-approver-1")
    with pytest.raises(ConfigurationError, match="development key"):
        resolve_approver_signing_key(ApproverSettings(signing_key=dev_signing), dev_stack=False)
    with pytest.raises(ConfigurationError, match=r"PODIUM_POLICY_APPROVER_KEYS: .*development"):
        resolve_approver_keys(PolicySettings(approver_keys=dev_verify), dev_stack=False)
    assert resolve_approver_keys(PolicySettings(approver_keys=dev_verify), dev_stack=True)
