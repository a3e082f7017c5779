"""Ed25519 signatures of policy decisions, bound to the request they answer.

The policy service signs, with its private key, the canonical encoding of the decision (every
field but `signature`, keys sorted, JSON) under a fixed context. The decision carries the id of
the key (`key_id`) and the digest of the whole request it answers (`request_digest`, see
`request_digest`), both covered by the signature. A requester checks the signature with the
public key of that id, and the digest against the request it sent itself: a valid decision on
another request (same ids, another tool) is refused.
"""

from __future__ import annotations

import hashlib

import msgspec

from policy_service.keys import SigningKey, VerifyKeys
from topics.messages import AuthorizationRequest, Decision

SIGNING_CONTEXT = b"podium.policy.decision.v1\n"
"""Prefix of the signed bytes: a signature of a decision is never valid for anything else."""

REQUEST_DIGEST_CONTEXT = b"podium.policy.request.v1\n"

REQUEST_FIELDS = (
    "request_id",
    "task_id",
    "system",
    "agent",
    "step_id",
    "action",
    "model",
    "endpoint",
    "tool",
    "arguments_digest",
    "estimated_tokens",
    "step_number",
    "call_index",
    "approval_id",
    "reply_to",
)
"""What the request digest covers: everything the decision depends on, and where it goes."""


def request_digest(request: AuthorizationRequest) -> str:
    """SHA-256 (hex) of the request's fields that a decision answers (`REQUEST_FIELDS`)."""
    fields = [[name, msgspec.to_builtins(getattr(request, name))] for name in REQUEST_FIELDS]
    return hashlib.sha256(REQUEST_DIGEST_CONTEXT + msgspec.json.encode(fields)).hexdigest()


def canonical_bytes(decision: Decision) -> bytes:
    """The bytes that are signed: the context, then every field but the signature, sorted."""
    unsigned = msgspec.structs.replace(decision, signature="")
    fields = msgspec.to_builtins(unsigned, order="deterministic")
    fields.pop("signature", None)
    return SIGNING_CONTEXT + msgspec.json.encode(fields)


def sign_decision(decision: Decision, key: SigningKey, *, request_digest: str) -> Decision:
    """The decision bound to `request_digest`, with `key_id` and `signature` set."""
    bound = msgspec.structs.replace(decision, key_id=key.key_id, request_digest=request_digest)
    return msgspec.structs.replace(bound, signature=key.sign(canonical_bytes(bound)).hex())


def signature_problem(decision: Decision, keys: VerifyKeys) -> str | None:
    """Why the signature does not hold (None when it does, under the key its id names)."""
    if not decision.signature:
        return "the decision is not signed"
    key = keys.get(decision.key_id)
    if key is None:
        return f"the decision's signature is by key {decision.key_id!r}, which is not trusted"
    try:
        signature = bytes.fromhex(decision.signature)
    except ValueError:
        return "the decision's signature is not valid"
    if not key.verifies(signature, canonical_bytes(decision)):
        return "the decision's signature is not valid"
    return None


def verify_decision(decision: Decision, keys: VerifyKeys) -> bool:
    """True when the signature matches the decision's content under the key it names."""
    return signature_problem(decision, keys) is None
