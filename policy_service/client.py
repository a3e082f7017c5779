"""The requester's side of the policy service: `Authorizer`, used by every actor.

`authorize(...)` sends an `AuthorizationRequest` keyed by `task_id` to `podium.policy.requests`
and waits for the signed `Decision` on this instance's reply topic. It FAILS CLOSED: a timeout, a
transport error, a reply that does not parse, a bad signature or an unknown decision value all
come back as a synthetic `deny` with `rule="fail_closed"` and the reason. So does a decision
signed with a key it does not trust, or one that answers another request (its `request_digest`
is not the digest of the request this Authorizer sent). Only `is_allowed()` of a verified
`allow` lets a call go ahead; the policy service recorded its `policy.decided` event before it
answered (it is that event's only writer). Requesters hold public keys only
(`policy_service/keys.py`): they can check decisions, not make them.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from typing import Any

import msgspec

from podium.core import tracing
from podium.core.settings import KafkaSettings
from policy_service.keys import VerifyKeys
from policy_service.signing import request_digest, signature_problem
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.messages import (
    Action,
    AuthorizationRequest,
    Decision,
    DecisionKind,
    utcnow,
)
from topics.names import TopicNames
from topics.request_reply import RequestReplyClient

log = logging.getLogger(__name__)

FAIL_CLOSED_RULE = "fail_closed"
KNOWN_DECISIONS = frozenset(str(kind) for kind in DecisionKind)


def arguments_digest(arguments: dict[str, Any] | None) -> str:
    """SHA-256 (hex) of the canonical JSON of tool arguments (sorted keys); '' for none."""
    if arguments is None:
        return ""
    canonical = msgspec.json.encode(msgspec.to_builtins(arguments, order="deterministic"))
    return hashlib.sha256(canonical).hexdigest()


def is_allowed(decision: Decision) -> bool:
    """True only for an `allow` (the Authorizer has already verified the signature)."""
    return decision.decision == DecisionKind.ALLOW


def fail_closed(request_id: str, task_id: str, reason: str) -> Decision:
    return Decision(
        request_id=request_id,
        task_id=task_id,
        decision=str(DecisionKind.DENY),
        rule=FAIL_CLOSED_RULE,
        reason=reason,
    )


class Authorizer:
    """Asks the policy service before every model call and tool call.

    One per actor replica: `await start()` once, `await stop()` at shutdown. Safe to call
    `authorize` concurrently (parallel branches, tool calls of one turn).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        *,
        instance_id: str,
        verify_keys: VerifyKeys,
        timeout_s: float = 5.0,
    ) -> None:
        if not verify_keys:
            raise ValueError("no verify key: every decision would be unverifiable")
        self._names = names
        self._keys = dict(verify_keys)
        self._timeout_s = timeout_s
        self._client = RequestReplyClient(kafka, names, instance_id=instance_id)

    @property
    def reply_topic(self) -> str:
        return self._client.reply_topic

    async def start(self) -> None:
        await self._client.start()

    async def stop(self) -> None:
        await self._client.stop()

    async def authorize(
        self,
        *,
        task_id: str,
        system: str,
        agent: str,
        step_id: str,
        action: Action,
        model: str | None = None,
        endpoint: str | None = None,
        tool: str | None = None,
        arguments: dict[str, Any] | None = None,
        estimated_tokens: int = 0,
        step_number: int = 0,
        call_index: int = 0,
        approval_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Decision:
        """The verified decision on one call; never raises for a policy or transport problem."""
        timeout = self._timeout_s if timeout_s is None else timeout_s
        request_id = uuid.uuid4().hex
        try:
            request = AuthorizationRequest(
                request_id=request_id,
                task_id=task_id,
                system=system,
                agent=agent,
                step_id=step_id,
                action=action,
                model=model,
                endpoint=endpoint,
                tool=tool,
                arguments_digest=arguments_digest(arguments),
                estimated_tokens=estimated_tokens,
                step_number=step_number,
                call_index=call_index,
                approval_id=approval_id,
                reply_to=self._client.reply_topic,
                deadline=utcnow() + timedelta(seconds=timeout),
            )
            value = encode(request)
        except (TypeError, ValueError, msgspec.EncodeError) as exc:
            return fail_closed(request_id, task_id, f"could not build the request: {exc}")
        try:
            reply = await self._client.request(
                self._names.policy_requests,
                key=task_id.encode(),
                value=value,
                # The caller's trace context: the service's `policy.decide` span is its child.
                headers=headers_for(request, tracing.trace_headers()),
                timeout_s=timeout,
                correlation_id=request_id,
            )
        except Exception as exc:  # every transport failure is a deny, by design
            log.warning("policy request %s for task %s failed: %s", request_id, task_id, exc)
            return fail_closed(
                request_id, task_id, f"no decision from the policy service: {exc or type(exc)}"
            )
        return self._verified(reply.value, request)

    def _verified(self, data: bytes | None, request: AuthorizationRequest) -> Decision:
        request_id, task_id = request.request_id, request.task_id
        try:
            decision: Decision = decode(data, Decision)
        except MalformedMessage as exc:
            return fail_closed(request_id, task_id, f"unreadable decision: {exc.reason}")
        problem = signature_problem(decision, self._keys)
        if problem is not None:
            log.warning("decision for request %s: %s: denied", request_id, problem)
            return fail_closed(request_id, task_id, problem)
        if (
            decision.request_id != request_id
            or decision.task_id != task_id
            or decision.request_digest != request_digest(request)
        ):
            log.warning("decision for request %s answers another request: denied", request_id)
            return fail_closed(request_id, task_id, "the decision answers another request")
        if decision.decision not in KNOWN_DECISIONS:
            return fail_closed(request_id, task_id, f"unknown decision value {decision.decision!r}")
        return decision
