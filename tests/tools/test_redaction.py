"""Redaction of tool arguments before `tool.called`: by key and by value."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.tools import redact_arguments

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=24, max_size=48)
plain_words = st.lists(
    st.sampled_from(["budget", "report", "the", "agent", "cost", "weekly", "summary", "2026"]),
    max_size=8,
).map(" ".join)
plain_keys = st.sampled_from(["query", "text", "note", "url", "body", "input", "header"])


def dumped(value: Any) -> str:
    return json.dumps(value)


def test_secrets_in_values_are_masked() -> None:
    arguments = {
        "url": "https://api.example.com/v1/items?api_key=abc123secret&page=2",
        "login": "postgresql://app:hunter2@db.internal:5432/app",
        "text": "call it with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
        "note": "my key is sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
        "auth": {"user": "bob", "pass": "x"},
        "headers": [
            {"name": "X-Api-Key", "value": "k-123"},
            {"name": "Accept", "value": "text/html"},
        ],
        "env": [{"key": "DB_PASSWORD", "value": "hunter3"}],
        "query": "token budgets",
    }
    redacted = redact_arguments(arguments)
    text = dumped(redacted)
    for secret in ("abc123secret", "hunter2", "eyJhbGci", "sk-proj-AbCd", "k-123", "hunter3"):
        assert secret not in text, secret
    assert redacted["auth"] == "***"
    assert redacted["url"] == "https://api.example.com/v1/items?api_key=***&page=2"
    assert redacted["login"] == "postgresql://***@db.internal:5432/app"
    assert redacted["headers"][1] == {"name": "Accept", "value": "text/html"}
    assert redacted["headers"][0] == {"name": "X-Api-Key", "value": "***"}
    assert redacted["query"] == "token budgets"


@given(
    key=plain_keys,
    prefix=plain_words,
    token=tokens,
    shape=st.sampled_from(["sk-{}", "sk-ant-api03-{}", "ghp_{}", "xoxb-{}", "Bearer {}", "AKIA{}"]),
)
@settings(max_examples=150, deadline=None)
def test_api_key_shapes_never_survive(key: str, prefix: str, token: str, shape: str) -> None:
    secret = shape.format(token.upper() if shape == "AKIA{}" else token)[: 4 + 36]
    value = f"{prefix} {secret} tail"
    redacted = redact_arguments({key: value, "nested": [{key: value}]})
    assert token[:16] not in dumped(redacted)


@given(
    user=st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12),
    password=tokens,
    param=st.sampled_from(["api_key", "token", "access_token", "apikey", "sig", "password", "key"]),
)
@settings(max_examples=100, deadline=None)
def test_credentials_in_urls_never_survive(user: str, password: str, param: str) -> None:
    url = f"https://{user}:{password}@example.com/p?{param}={password}&q=1"
    redacted = redact_arguments({"url": url})
    assert password not in dumped(redacted)
    assert redacted["url"].endswith("&q=1")


@given(arguments=st.dictionaries(plain_keys, plain_words, max_size=5))
@settings(max_examples=100, deadline=None)
def test_plain_arguments_are_unchanged_and_redaction_is_idempotent(
    arguments: dict[str, str],
) -> None:
    assert redact_arguments(arguments) == arguments
    once = redact_arguments({**arguments, "text": "Bearer abcdefghijklmnopqrstuvwxyz"})
    assert redact_arguments(once) == once
