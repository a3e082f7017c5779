"""The `Control` record of `podium.controls` and its events: what decodes and what does not."""

from __future__ import annotations

import pytest

from topics.codec import MalformedMessage, decode, encode
from topics.messages import PAYLOAD_TYPES, Control, ControlChangedData, EventType


def test_a_control_round_trips() -> None:
    control = Control(target="tool/wire-money", state="throttled", per_minute=5, set_by="ana")
    assert decode(encode(control), Control) == control


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"target": "agent/w", "state": "throttled", "set_by": "ana"}', "per_minute"),
        (
            b'{"target": "agent/w", "state": "paused", "per_minute": 3, "set_by": "ana"}',
            "per_minute",
        ),
        (b'{"target": "model/gpt", "state": "paused", "set_by": "ana"}', "$.target"),
        (b'{"target": "agent/w", "state": "stopped", "set_by": "ana"}', "$.state"),
        (b'{"target": "agent/w", "state": "paused", "set_by": ""}', "$.set_by"),
        (
            b'{"target": "tool/x", "state": "throttled", "per_minute": 0, "set_by": "a"}',
            "$.per_minute",
        ),
    ],
)
def test_a_control_that_cannot_be_read_one_way_is_refused(body: bytes, names: str) -> None:
    with pytest.raises(MalformedMessage, match=names.replace("$", r"\$")):
        decode(body, Control)


def test_every_control_event_has_the_control_payload() -> None:
    for kind in (EventType.CONTROL_PAUSED, EventType.CONTROL_RESUMED, EventType.CONTROL_THROTTLED):
        assert PAYLOAD_TYPES[str(kind)] is ControlChangedData
