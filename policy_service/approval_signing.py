"""Signed approval decisions: only an approver's key makes a decision count.

Anyone who may write the approvals topic (the actors park their steps there) could otherwise
write a "granted" decision for a pending approval. The deciders (the ledger API for its
`approvals:write` tokens, the operator's `podium approve|deny`, and the policy service itself
when an approval expires) sign each decision with an Ed25519 approver key; every reader of the
approvals book (the policy service, the command line) keeps only the decisions signed by a key it
trusts, and drops the others with a warning.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import msgspec

from policy_service.keys import SigningKey, VerifyKey
from topics.messages import ApprovalDecision

_DOMAIN = b"podium approval decision v1\0"


def signed_bytes(decision: ApprovalDecision) -> bytes:
    """What the signature covers: every field but the signature itself, in a fixed order."""
    fields = (
        decision.approval_id,
        decision.task_id,
        decision.decision,
        decision.decided_by,
        decision.reason,
        decision.decided_at.isoformat(),
        decision.key_id,
    )
    return _DOMAIN + msgspec.json.encode(fields)


def sign_decision(key: SigningKey, decision: ApprovalDecision) -> ApprovalDecision:
    """`decision`, with `key`'s id and signature."""
    unsigned = msgspec.structs.replace(decision, key_id=key.key_id, signature="")
    signature = base64.b64encode(key.sign(signed_bytes(unsigned))).decode()
    return msgspec.structs.replace(unsigned, signature=signature)


def is_trusted(decision: ApprovalDecision, trusted: Mapping[str, VerifyKey]) -> bool:
    """True when `decision` is signed by one of the `trusted` approver keys."""
    key = trusted.get(decision.key_id)
    if key is None or not decision.signature:
        return False
    try:
        signature = base64.b64decode(decision.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return key.verifies(signature, signed_bytes(decision))


def signer_trusted(signer: SigningKey, trusted: Mapping[str, VerifyKey]) -> bool:
    """True when `signer`'s public half is the `trusted` key of its id (its decisions count)."""
    known = trusted.get(signer.key_id)
    return known is not None and known.text() == signer.verify_key().text()
