"""Encoding and decoding of wire messages, and their Kafka headers.

A message that does not decode raises `MalformedMessage` with a reason that names the field
(`Expected `str`, got `int` - at `$.system``); consumers send it to the DLQ with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from topics.messages import SCHEMA_VERSION

T = TypeVar("T")

CONTENT_TYPE = "application/json"
HEADER_CONTENT_TYPE = "content-type"
HEADER_SCHEMA_VERSION = "podium-schema-version"
HEADER_MESSAGE_TYPE = "podium-message-type"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"
HEADER_REPLY_TO = "reply_to"
HEADER_CORRELATION_ID = "correlation_id"

KafkaHeaders = list[tuple[str, bytes]]

_encoder = msgspec.json.Encoder()


class MalformedMessage(ValueError):
    """The bytes are not a valid message of the expected type; `reason` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes | None, type: type[T] | Any) -> T:
    """Decode bytes into `type`, or raise `MalformedMessage` naming the offending field."""
    if data is None:
        raise MalformedMessage("empty message (null value)")
    try:
        value: T = msgspec.json.decode(data, type=type)
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"invalid message: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedMessage(f"not valid JSON: {exc}") from None
    version = getattr(value, "schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise MalformedMessage(
            f"unsupported schema_version {version}: this service reads version {SCHEMA_VERSION}"
        )
    return value


def headers_for(message: msgspec.Struct, extra: Iterable[tuple[str, str]] = ()) -> KafkaHeaders:
    """The standard headers of a message, plus any extra ones (trace context, reply_to)."""
    headers: KafkaHeaders = [
        (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode()),
        (HEADER_SCHEMA_VERSION, str(SCHEMA_VERSION).encode()),
        (HEADER_MESSAGE_TYPE, type(message).__name__.encode()),
    ]
    headers.extend((name, value.encode()) for name, value in extra)
    return headers


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    """The value of a header, decoded, or None."""
    for key, value in headers or ():
        if key == name:
            return value.decode(errors="replace") if value is not None else None
    return None


def headers_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {key: (value or b"").decode(errors="replace") for key, value in headers or ()}
