"""HMAC-SHA256 signatures of policy decisions.

The signature covers the canonical encoding of the decision (sorted keys, JSON, `signature`
empty), so the requester can check that the answer on its reply topic came from a holder of the
key and was not altered on the way.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from topics.messages import Decision

# Fields added to `Decision` after the first release: left out of the signed bytes while they
# hold their default, so requesters and services of either version still agree on signatures.
_LATER_FIELDS = ("approval_expires_at",)


def canonical_bytes(decision: Decision) -> bytes:
    """The bytes that are signed: every field of the decision but its signature, keys sorted."""
    unsigned = msgspec.structs.replace(decision, signature="")
    fields = msgspec.to_builtins(unsigned, order="deterministic")
    for name in _LATER_FIELDS:
        if fields.get(name) is None:
            fields.pop(name, None)
    return msgspec.json.encode(fields)


def signature_of(decision: Decision, key: bytes) -> str:
    return hmac.new(key, canonical_bytes(decision), hashlib.sha256).hexdigest()


def sign_decision(decision: Decision, key: bytes) -> Decision:
    """The same decision with its `signature` set."""
    return msgspec.structs.replace(decision, signature=signature_of(decision, key))


def verify_decision(decision: Decision, key: bytes) -> bool:
    """True when the signature matches the decision's content under `key`."""
    if not decision.signature:
        return False
    return hmac.compare_digest(decision.signature, signature_of(decision, key))
