"""The policy service: synchronous authorization of every model and tool call, budgets, approvals.

Requesters (actors) use `Authorizer`; the service itself is `policy_service.service.PolicyService`
(`podium policy`); human decisions go through `policy_service.approvals.decide_approval`.

Where things are: the decision is a plain function (`decision.py`) over the rule engine
(`rules.py`), the approvals book (`approval_book.py`) and a budget reservation
(`reservation.py`); the service's lifespan (`service.py`) runs the request loop
(`request_loop.py`, `dead_letters.py`), usage settlement (`settlement.py`), the approvals
follower and expiry (`approval_follower.py`, `approval_expiry.py`) over the budget store
(`budgets.py`, PostgreSQL) and a rules source (`rules_source.py`). Decisions are signed with
the service's Ed25519 key and bound to their request (`signing.py`, `keys.py`); requesters hold
the public keys only.
"""
