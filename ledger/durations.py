"""Durations as people type them: `45s`, `30m`, `12h`, `30d`, `2w` (a whole number and a unit).

Both `since=7d` of the API and `podium token create --expires-in 30d` read them here.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^([0-9]+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
HOW = "write it like 45s, 30m, 12h, 30d or 2w"


def is_duration(text: str) -> bool:
    """Whether `text` has the form of a duration (its size may still be out of range)."""
    return _DURATION.match(text) is not None


def parse_duration(text: str) -> timedelta:
    """The duration `text` says; ValueError naming the form otherwise, or if it is too long."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; {HOW}")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except (OverflowError, ValueError):
        raise ValueError(f"{text!r} is longer than any calendar; {HOW}") from None
