"""Tool names the vendors accept (`memory.read` is sent as `memory_read` and read back), and the
mock's `{tool_results}`, which lets a script show what a tool answered."""

from __future__ import annotations

import json

from actors.providers._translate import from_wire, wire_name
from actors.providers.anthropic_messages import AnthropicProvider
from actors.providers.base import ChatMessage, ModelRequest, ToolCall, ToolSpec
from actors.providers.keys import NoKey
from actors.providers.mock import MockProvider
from actors.providers.openai_chat import OpenAIChatProvider, to_openai_messages
from manifests.models import MockReply


def test_tool_names_with_dots_are_sent_as_the_vendors_accept_them() -> None:
    tools = [ToolSpec(name="memory.read"), ToolSpec(name="web-search")]
    assert wire_name("memory.read") == "memory_read"
    assert from_wire("memory_read", tools) == "memory.read"
    assert from_wire("web-search", tools) == "web-search"
    provider = OpenAIChatProvider(name="openai-compatible", api_key=NoKey(), default_model="m")
    request = ModelRequest(
        agent="a",
        model="m",
        tools=tools,
        messages=[
            ChatMessage(role="user", content="hi"),
            ChatMessage(
                role="assistant",
                tool_calls=[ToolCall(id="c1", name="memory.read", arguments={"key": "k"})],
            ),
        ],
    )
    params = provider.build_params(request)
    assert [t["function"]["name"] for t in params["tools"]] == ["memory_read", "web-search"]
    sent = to_openai_messages(request.messages, [])
    assert sent[-1]["tool_calls"][0]["function"]["name"] == "memory_read"


async def test_a_mock_script_can_show_the_tool_results() -> None:
    mock = MockProvider(script={"a": [MockReply(content="found: {tool_results}")]})
    reply = await mock.complete(
        ModelRequest(
            agent="a",
            model="mock-1",
            messages=[
                ChatMessage(role="user", content="go"),
                ChatMessage(role="assistant", tool_calls=[ToolCall(id="c", name="t")]),
                ChatMessage(role="tool", content=json.dumps({"count": 1}), tool_call_id="c"),
            ],
        )
    )
    assert reply.content == 'found: {"count": 1}'


def test_anthropic_gets_the_same_wire_names() -> None:
    provider = AnthropicProvider(api_key=NoKey(), default_model="claude-x")
    request = ModelRequest(
        agent="a",
        model="claude-x",
        tools=[ToolSpec(name="memory.search")],
        messages=[
            ChatMessage(role="user", content="hi"),
            ChatMessage(role="assistant", tool_calls=[ToolCall(id="c", name="memory.search")]),
            ChatMessage(role="tool", content="{}", tool_call_id="c", name="memory.search"),
        ],
    )
    params = provider.build_params(request)
    assert [t["name"] for t in params["tools"]] == ["memory_search"]
    uses = [
        block
        for message in params["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_use"
    ]
    assert [u["name"] for u in uses] == ["memory_search"]
