"""Approval expiry: a pending approval past its deadline or the TTL is decided as expired.

Every replica holds every approval, so each expires only the approvals whose partition maps to
a request partition it owns (`owns`): one replica expires a given approval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from podium.core.settings import KafkaSettings
from policy_service.approval_book import ApprovalBook
from policy_service.approvals import ApprovalAlreadyDecided, ApprovalNotFound, decide_approval
from policy_service.keys import SigningKey
from policy_service.settings import PolicySettings
from topics.messages import utcnow
from topics.names import TopicNames

log = logging.getLogger(__name__)


async def expire_approvals(
    kafka: KafkaSettings,
    names: TopicNames,
    settings: PolicySettings,
    book: ApprovalBook,
    *,
    signer: SigningKey,
    owns: Callable[[int], bool],
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Every `expiry_interval_s` once `ready`, until `stop`: expire the due approvals of the
    approvals partitions this replica `owns`, signed with the service's own key."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.expiry_interval_s):
                await stop.wait()
        if stop.is_set() or not ready.is_set():
            continue
        for entry in book.due(utcnow(), settings.approval_ttl_s):
            if not owns(entry.partition):
                continue
            approval_id = entry.request.approval_id
            try:
                await decide_approval(
                    kafka,
                    names,
                    approval_id,
                    signer=signer,
                    trusted=book.trusted,
                    granted=False,
                    expired=True,
                    decided_by="policy-service",
                    reason="not decided before its deadline",
                )
                log.info("approval %s expired", approval_id)
            except (ApprovalAlreadyDecided, ApprovalNotFound):
                pass
            except Exception:
                log.exception("could not expire approval %s", approval_id)
