"""`podium.controls` (compacted): an operator's pause, resume or throttle of a target.

Keyed by the target (`agent/NAME`, `system/NAME` or `tool/NAME`); the latest record of a key is
the target's control, so a throttle replaces a pause and `resumed` (or a tombstone) lifts both.
Only the operator principal writes the topic; every policy replica follows it into memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta

from topics.messages._base import Message, utcnow

CONTROL_KINDS = ("agent", "system", "tool")
"""What a control can name: an agent role, a system or a tool."""

ControlTarget = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=210,
        pattern=r"^(agent|system|tool)/[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="What is controlled: agent/NAME, system/NAME or tool/NAME; the record's key.",
    ),
]
ControlState = Literal["paused", "resumed", "throttled"]


class Control(Message, frozen=True, kw_only=True):
    """An operator's control of one target: paused, resumed, or throttled to a rate."""

    topic_doc: ClassVar[str] = "podium.controls (compacted)"

    target: ControlTarget
    state: Annotated[
        ControlState,
        Meta(
            description="paused: new calls denied; throttled: calls over `per_minute` denied; "
            "resumed: no control."
        ),
    ]
    per_minute: (
        Annotated[
            int,
            Meta(ge=1, le=1_000_000, description="The rate cap of a throttle, calls per minute."),
        ]
        | None
    ) = None
    reason: Annotated[str, Meta(max_length=1000, description="Why, as the operator said.")] = ""
    set_by: Annotated[
        str, Meta(min_length=1, max_length=200, description="Who set it (the operator's name).")
    ]
    set_at: datetime = msgspec.field(default_factory=utcnow)

    def __post_init__(self) -> None:
        # A throttle without a rate (or a rate on anything else) would be read two ways.
        if (self.state == "throttled") != (self.per_minute is not None):
            raise ValueError("`per_minute` is set exactly when `state` is `throttled`")
