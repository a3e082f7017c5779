"""Decision signatures and the requester's checks."""

from __future__ import annotations

import msgspec
import pytest

from podium.settings import ConfigurationError
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


def test_arguments_digest_is_canonical() -> None:
    assert arguments_digest({"a": 1, "b": [1, 2]}) == arguments_digest({"b": [1, 2], "a": 1})
    assert arguments_digest({"a": 1}) != arguments_digest({"a": 2})
    assert arguments_digest(None) == ""


def test_hmac_key_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    assert resolve_hmac_key(PolicySettings(hmac_key="abc")) == b"abc"
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="PODIUM_POLICY_HMAC_KEY"):
        resolve_hmac_key(PolicySettings())
