"""Poison records: outputs too large to produce, and inputs whose handling keeps failing.

A record's outputs are sized before they are produced: one over the limit (the topic's
`max.message.bytes`, read at start, or a setting; Kafka's default 1 MB when neither is known,
minus headroom for the batch framing) is never sent. The step fails with that reason instead:
the transactional loop hands the input record to its `on_poison` hook, whose outbox (a dead
letter, the task's failure) is committed with the input offset instead of the step's, so the
step's model and tool calls are not run again. A handler that raises is retried in place a
bounded number of times (`max_attempts`, with backoff) before the same hook takes the record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable

from aiokafka import ConsumerRecord
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from actors.records import OutRecord
from podium.core.errors import PermanentError
from podium.core.settings import KafkaSettings
from topics.kafka import MAX_MESSAGE_BYTES, make_admin

log = logging.getLogger(__name__)

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's default `max.message.bytes` (1 MB and a record batch's framing)."""
HEADROOM_BYTES = 4096
"""Kept free under the limit for what the estimate does not see (batch framing, compression)."""
LETTER_ROOM_BYTES = 64 * 1024
"""Room in a dead letter for what is not the original value (key, headers, reason)."""


class PoisonRecord(PermanentError):
    """A record cannot be processed for good: `reason` says why (it goes to the DLQ)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def record_size(out: OutRecord) -> int:
    """The size of `out` on the wire, as the producer estimates it before sending."""
    headers: list[tuple[str, bytes | None]] = list(out.headers)
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(out.key, out.value, headers))


def oversized(records: Iterable[OutRecord], limit: int) -> str | None:
    """Why `records` cannot be produced under `limit` bytes each, or None when they all fit."""
    for out in records:
        size = record_size(out)
        if size > limit:
            return (
                f"a record for {out.topic} is {size:,} bytes, over the {limit:,}-byte limit of "
                "a Kafka message (max.message.bytes); it was not produced"
            )
    return None


def kept_for_letter(
    record: ConsumerRecord[bytes, bytes], limit: int
) -> tuple[ConsumerRecord[bytes, bytes], str]:
    """`record` with its value cut so that its dead letter (the value in base64) fits under
    `limit` bytes, and a note for the reason when it was cut ("" when it is whole)."""
    value = record.value or b""
    room = max(0, (limit - LETTER_ROOM_BYTES) * 3 // 4)
    if len(value) <= room:
        return record, ""
    note = f" (the dead letter keeps the first {room:,} of its {len(value):,} bytes)"
    return dataclasses.replace(record, value=value[:room]), note


async def max_message_bytes(kafka: KafkaSettings, topic: str) -> int:
    """The largest record (`max.message.bytes`) `topic` accepts, as far as a producer may send,
    minus `HEADROOM_BYTES`; Kafka's default when the topic's config cannot be read."""
    configured = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    admin = make_admin(kafka)
    try:
        await admin.start()
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})]
        )
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:
                    if entry[0] == "max.message.bytes" and entry[1]:
                        configured = int(entry[1])
    except Exception as exc:  # a limit is still known: Kafka's default
        log.warning(
            "max.message.bytes of %s could not be read (%s); assuming Kafka's default", topic, exc
        )
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return min(configured, MAX_MESSAGE_BYTES) - HEADROOM_BYTES
