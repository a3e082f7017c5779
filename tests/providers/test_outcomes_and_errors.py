from __future__ import annotations

import email.utils

import pytest

from actors.providers import split_outcome
from actors.providers.errors import (
    PermanentModelError,
    TransientModelError,
    error_for_status,
    parse_retry_after,
)
from podium.core.errors import PermanentError, TransientError

OUTCOMES = ["revise", "approved"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Fine.\nOUTCOME: approved", ("Fine.", "approved")),
        ("Fine.\n\noutcome: Approved\n\n", ("Fine.", "approved")),
        ("Fine.\n**OUTCOME:** `revise`", ("Fine.", "revise")),
        ("Fine.\nOUTCOME: maybe", ("Fine.", None)),
        ("No label here.", ("No label here.", None)),
        ("OUTCOME: revise", ("", "revise")),
    ],
)
def test_split_outcome(content: str, expected: tuple[str, str | None]) -> None:
    assert split_outcome(content, OUTCOMES) == expected


def test_no_outcomes_leaves_content_alone() -> None:
    assert split_outcome("x\nOUTCOME: approved", []) == ("x\nOUTCOME: approved", None)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_error_families() -> None:
    for status in (408, 409, 429, 500, 502, 529):
        error = error_for_status("openai", status, "x", {"retry-after": "2"})
        assert isinstance(error, TransientModelError) and isinstance(error, TransientError)
        assert error.retry_after_s == 2.0
    for status in (400, 401, 403, 404, 422):
        error = error_for_status("openai", status, "x")
        assert isinstance(error, PermanentModelError) and isinstance(error, PermanentError)
