"""What every wire message shares: the schema version, the common field types, the base Struct."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from msgspec import Meta, Struct

SCHEMA_VERSION = 1
"""The schema version every message carries, in the body and in the `podium-schema-version`
header. A consumer rejects (dead-letters) a message whose major version it does not know."""

TaskId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$",
        description="Unique id of the task, chosen by the submitter; the Kafka key of every "
        "message of the task. Letters, digits and ._:@/- (at most 200 characters).",
    ),
]
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A manifest name (system, agent, tool, model endpoint).",
    ),
]
JSONValue = Any
TaskInput = Annotated[
    str | dict[str, JSONValue],
    Meta(description="The task's input: a text, or a JSON object."),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Message(Struct, frozen=True, kw_only=True):
    """Base of every wire message."""

    topic_doc: ClassVar[str] = ""

    schema_version: Annotated[int, Meta(ge=1, description="Wire schema version.")] = SCHEMA_VERSION
