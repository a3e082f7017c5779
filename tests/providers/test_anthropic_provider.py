"""The real `anthropic` SDK code path against a fake Messages API server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.providers import (
    ChatMessage,
    ModelProvider,
    ModelRequest,
    PermanentModelError,
    ToolCall,
    ToolSpec,
    TransientModelError,
    make_provider,
)
from podium.core.retry import retry_transient
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply

KEY_ENV = "TEST_ANTHROPIC_KEY"


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 50,
            "output_tokens": 12,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 20,
        },
    }


@pytest.fixture
def provider(fake_server: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch) -> ModelProvider:
    monkeypatch.setenv(KEY_ENV, "sk-ant-test")
    return make_provider(
        endpoint(
            "claude",
            provider="anthropic",
            base_url=fake_server.url,
            api_key_env=KEY_ENV,
            default_model="claude-sonnet-4-6",
        ),
        allowed_secret_env=[KEY_ENV],
    )


async def test_tool_use_and_usage(fake_server: FakeHTTPServer, provider: ModelProvider) -> None:
    fake_server.queue(
        Reply(
            body=message(
                [
                    {"type": "text", "text": "Searching."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "web-search",
                        "input": {"query": "audit"},
                    },
                ],
                stop_reason="tool_use",
            )
        )
    )
    search = ToolSpec(name="web-search", description="Search")
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="researcher",
                model="",
                messages=[
                    ChatMessage(role="system", content="Be brief."),
                    ChatMessage(role="user", content="Research audit."),
                    ChatMessage(
                        role="assistant",
                        content="Reading.",
                        tool_calls=[
                            ToolCall(id="toolu_0", name="read-url", arguments={"url": "u"}),
                            ToolCall(id="toolu_9", name="read-url", arguments={"url": "v"}),
                        ],
                    ),
                    ChatMessage(role="tool", tool_call_id="toolu_0", content="page u"),
                    ChatMessage(role="tool", tool_call_id="toolu_9", content="page v"),
                ],
                tools=[search],
            )
        )
    finally:
        await provider.aclose()
    assert reply.content == "Searching."
    assert reply.tool_calls == [
        ToolCall(id="toolu_1", name="web-search", arguments={"query": "audit"})
    ]
    # input counts cache reads and writes too; cached is the reads
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (
        100,
        12,
        30,
    )
    assert reply.model == "claude-sonnet-4-6"
    (request,) = fake_server.requests
    assert request.path == "/v1/messages"
    # the SDK sends the key as x-api-key or as a bearer token, depending on its version
    assert "sk-ant-test" in (
        request.headers.get("x-api-key", ""),
        request.headers.get("authorization", "").removeprefix("Bearer "),
    )
    body = request.json()
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == 4096
    assert body["system"] == "Be brief."
    assert body["tools"] == [
        {
            "name": "web-search",
            "description": "Search",
            "input_schema": {"type": "object", "properties": {}},
        }
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Research audit."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_0", "name": "read-url", "input": {"url": "u"}},
                {"type": "tool_use", "id": "toolu_9", "name": "read-url", "input": {"url": "v"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": "page u"},
                {"type": "tool_result", "tool_use_id": "toolu_9", "content": "page v"},
            ],
        },
    ]


async def test_outcome(fake_server: FakeHTTPServer, provider: ModelProvider) -> None:
    fake_server.queue(
        Reply(body=message([{"type": "text", "text": "Needs sources.\nOUTCOME: revise"}]))
    )
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="critic",
                model="",
                messages=[ChatMessage(role="user", content="Review.")],
                outcomes=["revise", "approved"],
            )
        )
    finally:
        await provider.aclose()
    assert (reply.content, reply.outcome) == ("Needs sources.", "revise")
    assert "OUTCOME: <label>" in fake_server.requests[0].json()["system"]


async def test_429_retry_after_then_success(
    fake_server: FakeHTTPServer, provider: ModelProvider
) -> None:
    fake_server.queue(
        Reply(
            status=429,
            body={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            headers={"retry-after": "1"},
        ),
        Reply(body=message([{"type": "text", "text": "ok"}])),
    )
    waits: list[float] = []
    request = ModelRequest(agent="a", model="", messages=[ChatMessage(role="user", content="x")])
    try:
        reply = await retry_transient(
            lambda: provider.complete(request),
            max_attempts=2,
            base_delay_s=0.001,
            max_delay_s=0.001,
            deadline=asyncio.get_running_loop().time() + 30,
            on_retry=lambda attempt, error, delay: waits.append(delay),
        )
    finally:
        await provider.aclose()
    assert reply.content == "ok"
    assert waits == [1.0]
    assert len(fake_server.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(400, PermanentModelError), (529, TransientModelError)]
)
async def test_errors(
    fake_server: FakeHTTPServer, provider: ModelProvider, status: int, kind: type[Exception]
) -> None:
    fake_server.queue(
        Reply(status=status, body={"type": "error", "error": {"type": "x", "message": "nope"}})
    )
    try:
        with pytest.raises(kind, match=f"anthropic: HTTP {status}"):
            await provider.complete(
                ModelRequest(agent="a", model="", messages=[ChatMessage(role="user", content="x")])
            )
    finally:
        await provider.aclose()
    assert len(fake_server.requests) == 1
