"""`since`/`until` of the API: every value a client can send is a time, or a 400 naming it; and
the durations they (and `podium token create --expires-in`) are written in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException

from ledger.api import parse_time
from ledger.durations import parse_duration

OUT_OF_RANGE = [
    "999999999d",
    "99999999999999999999d",
    "9999999999999w",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T13:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T10:00:01-14:00",
]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["since", "until"])
def test_times_out_of_range_are_400_naming_the_parameter(value: str, name: str) -> None:
    with pytest.raises(HTTPException) as caught:
        parse_time(value, name)
    assert caught.value.status_code == 400
    assert str(caught.value.detail).startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0001-01-01T14:00:00+14:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T09:59:59-14:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("0001-01-01T00:00:00", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_times_at_the_edges_of_the_range_are_kept_in_utc(value: str, expected: datetime) -> None:
    parsed = parse_time(value, "since")
    assert parsed == expected and parsed is not None and parsed.utcoffset() is not None


def test_a_long_duration_within_range_is_a_time() -> None:
    parsed = parse_time("100000d", "since")
    assert parsed is not None and parsed.year < datetime.now(UTC).year - 270


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    parsed = parse_duration(text)
    assert parsed == expected


@pytest.mark.parametrize("text", ["", "1y", "d", "-3d", "1.5h", "12 h", "99999999999999999999d"])
def test_what_is_not_a_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="30d"):
        parse_duration(text)
