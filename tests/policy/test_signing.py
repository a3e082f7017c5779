"""Decision signatures and the requester's checks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import msgspec
import pytest

from podium.core.settings import ConfigurationError
from policy_service.client import arguments_digest
from policy_service.settings import PolicySettings, resolve_hmac_key
from policy_service.signing import sign_decision, verify_decision
from topics.codec import decode, encode
from topics.messages import Decision

KEY = b"k" * 32


def test_signature_survives_the_wire_and_detects_tampering() -> None:
    signed = sign_decision(
        Decision(request_id="r", task_id="t", decision="allow", reserved_usd=0.1), KEY
    )
    received: Decision = decode(encode(signed), Decision)
    assert verify_decision(received, KEY)
    assert not verify_decision(msgspec.structs.replace(received, decision="deny"), KEY)
    assert not verify_decision(received, b"other-key")
    assert not verify_decision(msgspec.structs.replace(received, signature=""), KEY)


def test_signature_covers_the_approval_expiry_and_ignores_it_when_unset() -> None:
    asked = Decision(
        request_id="r",
        task_id="t",
        decision="approval_required",
        approval_id="apr-1",
        approval_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    signed: Decision = decode(encode(sign_decision(asked, KEY)), Decision)
    assert verify_decision(signed, KEY)
    later = msgspec.structs.replace(signed, approval_expires_at=datetime(2031, 1, 1, tzinfo=UTC))
    assert not verify_decision(later, KEY)
    assert not verify_decision(msgspec.structs.replace(signed, approval_expires_at=None), KEY)
    # A decision from a service that predates the field: its signature did not cover it.
    plain = Decision(request_id="r", task_id="t", decision="allow")
    old_bytes = msgspec.json.encode(
        {
            k: v
            for k, v in msgspec.to_builtins(plain, order="deterministic").items()
            if k != "approval_expires_at"
        }
    )
    old_signature = hmac.new(KEY, old_bytes, hashlib.sha256).hexdigest()
    assert verify_decision(msgspec.structs.replace(plain, signature=old_signature), KEY)


def test_arguments_digest_is_canonical() -> None:
    assert arguments_digest({"a": 1, "b": [1, 2]}) == arguments_digest({"b": [1, 2], "a": 1})
    assert arguments_digest({"a": 1}) != arguments_digest({"a": 2})
    assert arguments_digest(None) == ""


def test_hmac_key_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    assert resolve_hmac_key(PolicySettings(hmac_key="abc")) == b"abc"
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="PODIUM_POLICY_HMAC_KEY"):
        resolve_hmac_key(PolicySettings())
