"""`<topic>.dlq`: a message a consumer could not process."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta

from topics.messages._base import Message, utcnow


class DeadLetter(Message, frozen=True, kw_only=True):
    """A message a consumer could not process, with the reason. Written to `<topic>.dlq`."""

    topic_doc: ClassVar[str] = "<topic>.dlq"

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: Annotated[bytes, Meta(description="The original bytes (base64 in JSON).")]
    headers: dict[str, str] = {}
    reason: Annotated[str, Meta(description="Why it could not be processed.")]
    service: str = ""
    at: datetime = msgspec.field(default_factory=utcnow)
