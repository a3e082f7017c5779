"""`ollama`: Ollama's native `/api/chat` against a fake Ollama on 127.0.0.1, with tools."""

from __future__ import annotations

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
from podium.core.pricing import price_call
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply

SEARCH = ToolSpec(
    name="web-search",
    description="Search",
    parameters={"type": "object", "properties": {"q": {"type": "string"}}},
)


def chat(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "llama3.1",
        "created_at": "2026-12-03T10:00:00Z",
        "message": {"role": "assistant", "content": "", **message},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 42,
        "eval_count": 7,
    }


def ollama(server: FakeHTTPServer, **spec: Any) -> Any:
    return make_provider(
        endpoint(
            "ollama-default",
            provider="ollama",
            base_url=server.url,
            default_model="llama3.1",
            **spec,
        )
    )


async def test_tool_calls_round_trip_and_usage(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(
        Reply(
            body=chat(
                {"tool_calls": [{"function": {"name": "web-search", "arguments": {"q": "x"}}}]}
            )
        ),
        Reply(body=chat({"content": "It is x."})),
    )
    provider = ollama(fake_server, options={"temperature": "0.2", "num_ctx": "8192"})
    try:
        first = await provider.complete(
            ModelRequest(
                agent="a",
                model="llama3.1",
                messages=[
                    ChatMessage(role="system", content="Be brief."),
                    ChatMessage(role="user", content="find x"),
                ],
                tools=[SEARCH],
                max_output_tokens=256,
                call_number=3,
                timeout_s=10,
            )
        )
        assert first.tool_calls == [
            ToolCall(id="call_3_0", name="web-search", arguments={"q": "x"})
        ]
        second = await provider.complete(
            ModelRequest(
                agent="a",
                model="llama3.1",
                messages=[
                    ChatMessage(role="user", content="find x"),
                    ChatMessage(role="assistant", tool_calls=first.tool_calls),
                    ChatMessage(
                        role="tool", content="x found", tool_call_id="call_3_0", name="web-search"
                    ),
                ],
                tools=[SEARCH],
                timeout_s=10,
            )
        )
    finally:
        await provider.aclose()
    sent = fake_server.requests[0]
    assert sent.path == "/api/chat"
    body = sent.json()
    assert body["stream"] is False and body["model"] == "llama3.1"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "find x"},
    ]
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "web-search",
            "description": "Search",
            "parameters": SEARCH.parameters,
        },
    }
    assert body["options"] == {"temperature": 0.2, "num_ctx": 8192, "num_predict": 256}
    assert "authorization" not in sent.headers
    history = fake_server.requests[1].json()["messages"]
    assert history[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "web-search", "arguments": {"q": "x"}}}],
    }
    assert history[2] == {"role": "tool", "content": "x found", "tool_name": "web-search"}
    assert second.content == "It is x."
    assert (second.usage.input_tokens, second.usage.output_tokens) == (42, 7)
    assert price_call("ollama", second.model, second.usage, None).source == "unknown"


async def test_output_schema_is_sent_as_format(fake_server: FakeHTTPServer) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fake_server.queue(Reply(body=chat({"content": '{"n": 1}'})))
    provider = ollama(fake_server)
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="a",
                model="llama3.1",
                messages=[ChatMessage(role="user", content="n?")],
                output_schema=schema,
                timeout_s=10,
            )
        )
    finally:
        await provider.aclose()
    assert fake_server.requests[0].json()["format"] == schema
    assert reply.content == '{"n": 1}'


@pytest.mark.parametrize(
    ("status", "error"), [(404, PermanentModelError), (503, TransientModelError)]
)
async def test_errors_by_status(
    fake_server: FakeHTTPServer, status: int, error: type[Exception]
) -> None:
    fake_server.queue(Reply(status=status, body={"error": "model 'llama9' not found"}))
    provider = ollama(fake_server)
    try:
        with pytest.raises(error, match="model 'llama9' not found"):
            await provider.complete(
                ModelRequest(
                    agent="a",
                    model="llama9",
                    messages=[ChatMessage(role="user", content="hi")],
                    timeout_s=10,
                )
            )
    finally:
        await provider.aclose()


async def test_no_server_is_transient() -> None:
    server = FakeHTTPServer().start()
    url = server.url
    server.stop()
    provider = make_provider(endpoint("o", provider="ollama", base_url=url, default_model="m"))
    try:
        with pytest.raises(TransientModelError, match="connection failed"):
            await provider.complete(
                ModelRequest(
                    agent="a", model="m", messages=[ChatMessage(role="user", content="hi")]
                )
            )
    finally:
        await provider.aclose()
