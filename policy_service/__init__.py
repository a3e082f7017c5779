"""The policy service: synchronous authorization of every model and tool call, budgets, approvals.

Requesters (actors) use `Authorizer`; the service itself is `policy_service.service.PolicyService`
(`podium policy`); human decisions go through `policy_service.approvals.decide_approval`.
"""

from policy_service.client import Authorizer, arguments_digest, is_allowed
from policy_service.settings import PolicySettings, resolve_hmac_key
from policy_service.signing import sign_decision, verify_decision

__all__ = [
    "Authorizer",
    "PolicySettings",
    "arguments_digest",
    "is_allowed",
    "resolve_hmac_key",
    "sign_decision",
    "verify_decision",
]
