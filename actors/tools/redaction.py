"""Masking of secret-looking values in tool arguments, for events and the audit trail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|token|api[_-]?key|apikey|secret|authori[sz]ation|credential"
    r"|private[_-]?key|cookie|session[_-]?id",
    re.IGNORECASE,
)
"""Keys whose values are masked wherever they appear, at any depth."""


def redact_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `arguments` with the value of every secret-looking key replaced by `***`."""
    return {key: _redact_value(key, value) for key, value in arguments.items()}


def _redact_value(key: str, value: Any) -> Any:
    if SECRET_KEY.search(key):
        return MASK
    return _redact(value)


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value
