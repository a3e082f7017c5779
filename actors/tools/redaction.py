"""Masking of secrets in tool arguments, for events and the audit trail.

By key: the value of every secret-looking key (`password`, `api_key`, `token`, `auth`, ...) is
replaced by `***`, at any depth, and so is the `value` of a `{name, value}` pair (or
`{key, value}`, `{header, value}`) whose name looks secret (`{"name": "Authorization", ...}`).
By value, inside every string: bearer tokens and `Authorization:` headers, API-key shapes
(`sk-...`, `ghp_...`, `xoxb-...`, `AKIA...`, `AIza...`, JWTs, PEM private keys), credentials in
URLs (`scheme://user:password@` and secret-looking query parameters such as `?api_key=`), and
`password=...` / `secret: ...` written in text. Redaction is idempotent."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|token|api[_-]?key|apikey|secret|authori[sz]ation|credential"
    r"|private[_-]?key|cookie|session[_-]?id|(^|[^a-z])auth($|[^a-z])|^pwd$|signature|bearer",
    re.IGNORECASE,
)
"""Keys whose values are masked wherever they appear, at any depth."""

_SECRET_PARAM = re.compile(r"(x[_-]?)?(auth|key|sig|pwd|code|jwt)", re.IGNORECASE)
"""Query parameter names that carry credentials although `SECRET_KEY` does not match them."""

_PAIR_NAMES = ("name", "key", "header", "field")

_TOKEN = r"[A-Za-z0-9._~+/=-]"
_SHAPES = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
    r"|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    r"|\b(?:sk|rk|pk)[-_][A-Za-z0-9_-]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}|\bglpat-[A-Za-z0-9_-]{20,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|\bAIza[0-9A-Za-z_-]{30,}",
    re.DOTALL,
)
"""Values that are secrets by their shape alone (`sk-...` ones see `_shape`)."""
_AUTH_HEADER = re.compile(r"(?i)\b(authorization\s*[:=]\s*)(\w+\s+)?[^\s\"',;]+")
_BEARER = re.compile(rf"(?i)\b(bearer\s+){_TOKEN}{{8,}}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_QUERY_PARAM = re.compile(r"([?&;])([^=&#\s?;]+)=([^&#\s;]*)")
_ASSIGNMENT = re.compile(
    r"(?i)\b(pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret|api[_-]?key|apikey"
    r"|access[_-]?token|refresh[_-]?token|token)(\s*[=:]\s*)(\"?)[^\s\"'&,;]+"
)


def redact_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `arguments` with secrets masked by key and by value (see the module)."""
    return _redact_mapping(arguments)


def redact_text(text: str) -> str:
    """`text` with secret values masked: tokens, key shapes, credentials in URLs."""
    if len(text) < 8:
        return text
    text = _SHAPES.sub(_shape, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _QUERY_PARAM.sub(_query_param, text)
    return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)


def _shape(match: re.Match[str]) -> str:
    found = match.group(0)
    if found[:3].lower() in ("sk-", "sk_", "rk-", "rk_", "pk-", "pk_"):
        # A key has digits or mixed case; `sk-learn-tutorial-example` is a word, not a key.
        body = found[3:]
        mixed = any(c.isupper() for c in body) and any(c.islower() for c in body)
        if not (mixed or any(c.isdigit() for c in body) or len(body) >= 40):
            return found
    return MASK


def _query_param(match: re.Match[str]) -> str:
    name = match.group(2)
    if SECRET_KEY.search(name) or _SECRET_PARAM.fullmatch(name):
        return f"{match.group(1)}{name}={MASK}"
    return match.group(0)


def _secret_name(value: Any) -> bool:
    return isinstance(value, str) and bool(SECRET_KEY.search(value))


def _redact_mapping(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    pair_secret = "value" in mapping and any(_secret_name(mapping.get(n)) for n in _PAIR_NAMES)
    redacted: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key)
        if SECRET_KEY.search(name) or (pair_secret and name == "value"):
            redacted[name] = MASK
        else:
            redacted[name] = _redact(value)
    return redacted


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return _redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value
