"""Dead-lettering of a refused policy request: the DLQ record, its event, and maybe a deny."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from policy_service.keys import SigningKey
from policy_service.signing import sign_decision
from topics import dlq
from topics.codec import (
    HEADER_CORRELATION_ID,
    HEADER_REPLY_TO,
    encode,
    header,
    headers_for,
)
from topics.messages import Decision, DecisionKind
from topics.names import TopicNames

log = logging.getLogger(__name__)

SendReply = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], "asyncio.Task[None]"]
"""Deliver a reply (topic, key, value, headers), bounded in time (`RequestLoop._reply`)."""


async def dead_letter(
    producer: AIOKafkaProducer,
    names: TopicNames,
    signing_key: SigningKey,
    record: ConsumerRecord,
    reason: str,
    reply: SendReply | None,
) -> list[asyncio.Future[Any]]:
    """Send the record to the DLQ with its `message.dead_lettered` event and, with `reply`, when
    the requester's own reply topic can be found from the headers, a signed deny; the delivery
    futures, never raises."""
    log.warning(
        "request at %s[%d]@%d is malformed: %s",
        record.topic,
        record.partition,
        record.offset,
        reason,
    )
    task_id = (record.key or b"").decode(errors="replace") or "unknown"
    letter = dlq.dead_letter(record, reason, service="policy")
    ev = dlq.dead_lettered_event(
        record, reason, dlq=names.policy_requests_dlq, task_id=task_id, source="policy"
    )
    futures: list[asyncio.Future[Any]] = []
    try:
        futures.append(
            await producer.send(
                names.policy_requests_dlq,
                key=record.key,
                value=encode(letter),
                headers=headers_for(letter),
            )
        )
        futures.append(
            await producer.send(
                names.events, key=record.key, value=encode(ev), headers=headers_for(ev)
            )
        )
        # Answer too when the requester can be found, so it denies now, not at its deadline.
        reply_to = header(record.headers, HEADER_REPLY_TO)
        correlation = header(record.headers, HEADER_CORRELATION_ID)
        if reply is not None and reply_to and correlation and names.is_reply_topic(reply_to):
            answer = sign_decision(
                Decision(
                    request_id=correlation,
                    task_id=task_id,
                    decision=str(DecisionKind.DENY),
                    rule="malformed_request",
                    reason=f"the request could not be read: {reason}",
                ),
                signing_key,
                request_digest="",  # no request could be read: it answers none
            )
            futures.append(
                reply(
                    reply_to,
                    record.key,
                    encode(answer),
                    headers_for(answer, [(HEADER_CORRELATION_ID, correlation)]),
                )
            )
    except Exception:
        log.exception(
            "could not dead-letter %s[%d]@%d", record.topic, record.partition, record.offset
        )
    return futures
