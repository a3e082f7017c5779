"""The real `openai` SDK code path against a fake Chat Completions server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.providers import (
    ChatMessage,
    ModelRequest,
    PermanentModelError,
    ToolCall,
    ToolSpec,
    TransientModelError,
    make_provider,
)
from podium.core.errors import TransientError
from podium.core.retry import retry_transient
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply

KEY_ENV = "TEST_OPENAI_KEY"


def completion(message: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}
        ],
        "usage": usage
        or {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 64},
        },
    }


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    return "sk-test-123"


def provider_for(server: FakeHTTPServer, kind: str = "openai") -> Any:
    return make_provider(
        endpoint("gpt", provider=kind, base_url=server.url + "/v1", api_key_env=KEY_ENV),
        allowed_secret_env=[KEY_ENV],
    )


SEARCH = ToolSpec(
    name="web-search",
    description="Search",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}},
)


async def test_tool_calls_and_usage_round_trip(
    fake_server: FakeHTTPServer, openai_key: str
) -> None:
    fake_server.queue(
        Reply(
            body=completion(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_abc",
                            "type": "function",
                            "function": {
                                "name": "web-search",
                                "arguments": '{"query": "agent budgets"}',
                            },
                        }
                    ],
                }
            )
        )
    )
    provider = provider_for(fake_server)
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="researcher",
                model="gpt-4o",
                messages=[
                    ChatMessage(role="system", content="Be brief."),
                    ChatMessage(role="user", content="Research budgets."),
                    ChatMessage(
                        role="assistant",
                        tool_calls=[ToolCall(id="call_0", name="read-url", arguments={"url": "u"})],
                    ),
                    ChatMessage(role="tool", tool_call_id="call_0", content="page text"),
                ],
                tools=[SEARCH],
                max_output_tokens=256,
            )
        )
    finally:
        await provider.aclose()
    assert reply.tool_calls == [
        ToolCall(id="call_abc", name="web-search", arguments={"query": "agent budgets"})
    ]
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.cached_tokens) == (
        120,
        30,
        64,
    )
    assert reply.model == "gpt-4o-2024-08-06"
    (request,) = fake_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    body = request.json()
    assert body["model"] == "gpt-4o"
    assert body["max_completion_tokens"] == 256
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "web-search",
                "description": "Search",
                "parameters": SEARCH.parameters,
            },
        }
    ]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Research budgets."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "read-url", "arguments": '{"url": "u"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "page text"},
    ]


async def test_outcome_is_asked_for_and_parsed(
    fake_server: FakeHTTPServer, openai_key: str
) -> None:
    fake_server.queue(Reply(body=completion({"content": "Looks solid.\n\nOUTCOME: approved"})))
    provider = provider_for(fake_server)
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="critic",
                model="gpt-4o",
                messages=[ChatMessage(role="user", content="Review this.")],
                outcomes=["revise", "approved"],
            )
        )
    finally:
        await provider.aclose()
    assert (reply.content, reply.outcome) == ("Looks solid.", "approved")
    system = fake_server.requests[0].json()["messages"][0]
    assert system["role"] == "system" and "OUTCOME: <label>" in system["content"]
    assert "revise, approved" in system["content"]


async def test_openai_compatible_without_key_and_max_tokens(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body=completion({"content": "hi"})))
    provider = make_provider(
        endpoint(
            "local",
            provider="openai-compatible",
            base_url=fake_server.url + "/v1",
            default_model="llama3",
        )
    )
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="a",
                model="",
                messages=[ChatMessage(role="user", content="x")],
                max_output_tokens=9,
            )
        )
    finally:
        await provider.aclose()
    assert reply.content == "hi"
    body = fake_server.requests[0].json()
    assert body["model"] == "llama3" and body["max_tokens"] == 9


async def test_429_with_retry_after_is_honoured_by_our_retry(
    fake_server: FakeHTTPServer, openai_key: str
) -> None:
    fake_server.queue(
        Reply(
            status=429,
            body={"error": {"message": "slow down", "type": "rate_limit_error"}},
            headers={"retry-after": "0.2"},
        ),
        Reply(body=completion({"content": "done"})),
    )
    provider = provider_for(fake_server)
    waits: list[float] = []
    errors: list[TransientError] = []

    def on_retry(attempt: int, error: TransientError, delay: float) -> None:
        errors.append(error)
        waits.append(delay)

    request = ModelRequest(
        agent="a", model="gpt-4o", messages=[ChatMessage(role="user", content="x")]
    )
    try:
        reply = await retry_transient(
            lambda: provider.complete(request),
            max_attempts=3,
            base_delay_s=0.001,
            max_delay_s=0.01,
            deadline=asyncio.get_running_loop().time() + 30,
            on_retry=on_retry,
        )
    finally:
        await provider.aclose()
    assert reply.content == "done"
    assert len(fake_server.requests) == 2  # the SDK itself did not retry
    (error,) = errors
    assert isinstance(error, TransientModelError)
    assert error.status_code == 429 and error.retry_after_s == pytest.approx(0.2)
    assert waits[0] >= 0.2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentModelError),
        (401, PermanentModelError),
        (404, PermanentModelError),
        (408, TransientModelError),
        (409, TransientModelError),
        (500, TransientModelError),
        (503, TransientModelError),
    ],
)
async def test_status_translation(
    fake_server: FakeHTTPServer, openai_key: str, status: int, kind: type[Exception]
) -> None:
    fake_server.queue(Reply(status=status, body={"error": {"message": f"status {status}"}}))
    provider = provider_for(fake_server)
    request = ModelRequest(
        agent="a", model="gpt-4o", messages=[ChatMessage(role="user", content="x")]
    )
    try:
        with pytest.raises(kind, match=f"HTTP {status}"):
            await provider.complete(request)
    finally:
        await provider.aclose()
    assert len(fake_server.requests) == 1


async def test_timeout_and_connection_errors_are_transient(
    fake_server: FakeHTTPServer, openai_key: str
) -> None:
    fake_server.queue(Reply(body=completion({"content": "late"}), delay_s=2.0))
    provider = provider_for(fake_server)
    request = ModelRequest(
        agent="a", model="gpt-4o", messages=[ChatMessage(role="user", content="x")], timeout_s=0.2
    )
    try:
        with pytest.raises(TransientModelError, match="timed out"):
            await provider.complete(request)
    finally:
        await provider.aclose()
    closed = make_provider(
        endpoint("gpt", provider="openai", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV),
        allowed_secret_env=[KEY_ENV],
    )
    try:
        with pytest.raises(TransientModelError, match="connection failed"):
            await closed.complete(request)
    finally:
        await closed.aclose()


async def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_NO_SUCH_KEY", raising=False)
    provider = make_provider(
        endpoint("gpt", provider="openai", api_key_env="TEST_NO_SUCH_KEY"),
        allowed_secret_env=["TEST_NO_SUCH_KEY"],
    )
    with pytest.raises(PermanentModelError, match="TEST_NO_SUCH_KEY"):
        await provider.complete(
            ModelRequest(
                agent="a", model="gpt-4o", messages=[ChatMessage(role="user", content="x")]
            )
        )


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(PermanentModelError, match=r"ModelEndpoint/gpt: options\.temprature"):
        make_provider(endpoint("gpt", provider="openai", options={"temprature": 0.1}))
