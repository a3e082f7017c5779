from __future__ import annotations

import pytest
from pydantic import ValidationError

from actors.providers import (
    ChatMessage,
    MockProvider,
    ModelRequest,
    make_provider,
)
from tests.providers.endpoints import endpoint

SCRIPT = {
    "researcher": [
        {"tool_calls": [{"name": "web-search", "arguments": {"query": "agent governance"}}]},
        {"content": "Findings: budgets and approvals."},
    ],
    "critic": [
        {"content": "Needs sources.", "outcome": "revise"},
        {"content": "Good.", "outcome": "approved"},
    ],
}


def request(agent: str, call_number: int = 0, **kw: object) -> ModelRequest:
    messages = kw.pop("messages", None) or [
        ChatMessage(role="system", content="You are careful."),
        ChatMessage(role="user", content="Write about agent governance and cost control."),
    ]
    return ModelRequest(agent=agent, model="", messages=messages, call_number=call_number, **kw)  # type: ignore[arg-type]


def scripted() -> MockProvider:
    provider = make_provider(endpoint("offline", provider="mock", options={"script": SCRIPT}))
    assert isinstance(provider, MockProvider)
    return provider


async def test_script_replies_follow_call_number_and_last_repeats() -> None:
    provider = scripted()
    first = await provider.complete(request("researcher", 0))
    assert first.content == ""
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [
        ("call_0_0", "web-search", {"query": "agent governance"})
    ]
    second = await provider.complete(request("researcher", 1))
    assert second.content == "Findings: budgets and approvals."
    assert second.tool_calls == []
    later = await provider.complete(request("researcher", 7))
    assert later.content == second.content


async def test_scripted_outcomes() -> None:
    provider = scripted()
    outcomes = ["revise", "approved"]
    first = await provider.complete(request("critic", 0, outcomes=outcomes))
    second = await provider.complete(request("critic", 1, outcomes=outcomes))
    assert (first.content, first.outcome) == ("Needs sources.", "revise")
    assert (second.content, second.outcome) == ("Good.", "approved")


async def test_scripted_reply_without_outcome_takes_first_allowed() -> None:
    provider = scripted()
    reply = await provider.complete(request("researcher", 1, outcomes=["done", "again"]))
    assert reply.outcome == "done"


async def test_unscripted_agent_is_deterministic_and_uses_its_input() -> None:
    provider = scripted()
    a = await provider.complete(request("writer"))
    b = await provider.complete(request("writer"))
    assert a == b
    assert a.content.startswith("writer: Write about agent governance")
    assert a.tool_calls == []
    assert a.outcome is None
    other = await provider.complete(
        request("writer", messages=[ChatMessage(role="user", content="Something else")])
    )
    assert other.content != a.content


async def test_unscripted_never_calls_tools_and_picks_first_outcome() -> None:
    from actors.providers import ToolSpec

    provider = MockProvider()
    reply = await provider.complete(
        request("analyst", tools=[ToolSpec(name="web-search")], outcomes=["ok", "retry"])
    )
    assert reply.tool_calls == []
    assert reply.outcome == "ok"


async def test_usage_counts_words() -> None:
    provider = MockProvider()
    reply = await provider.complete(request("writer"))
    # "You are careful." (3) + "Write about agent governance and cost control." (7)
    assert reply.usage.input_tokens == 10
    assert reply.usage.output_tokens == len(reply.content.split())
    assert reply.model == "mock-1"


async def test_default_model_from_endpoint() -> None:
    provider = make_provider(endpoint(provider="mock", default_model="demo-small"))
    reply = await provider.complete(request("writer"))
    assert reply.model == "demo-small"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"script": {"critic": [{"content": "x", "outcom": "y"}]}},
            "options.script.critic.0.outcom: unknown field",
        ),
        ({"script": {"critic": []}}, "options.script.critic: List should have at least 1 item"),
        (
            {"script": {"critic": [{"tool_calls": [{"arguments": {}}]}]}},
            "options.script.critic.0.tool_calls.0.name: Field required",
        ),
        ({"scripts": {}}, "options.scripts: unknown field"),
    ],
)
def test_bad_script_is_rejected_by_the_manifest_naming_the_place(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        endpoint("offline", provider="mock", options=options)
    assert message in str(info.value)
