"""The `mock` provider: deterministic, offline, scriptable. Demos and golden tests use it.

`options.script` maps an agent name to its replies in order; reply `n` answers the agent's call
`n` (`ModelRequest.call_number`), and after the last, the last repeats:

    script:
      researcher:
        - tool_calls: [{name: web-search, arguments: {query: "agent governance"}}]
        - content: "Findings: ..."
      critic:
        - {content: "Needs sources.", outcome: revise}

A scripted `content` may hold `{tool_results}`, replaced by what the tools answered the calls of
the previous reply (one line each), so that a script shows what a tool returned.

A scripted tool call gets the id `call_<call_number>_<index>`. A scripted reply without tool calls
and without an outcome, when outcomes are required, takes the first allowed outcome. An agent
without a script gets `<agent>: <digest of the last user message>` (with an `output_schema`, a
JSON object of that schema whose strings are that text), the first allowed outcome when outcomes
are required, and never a tool call. Usage is counted in whitespace-separated words:
every message of the prompt in, the reply (content and tool-call arguments) out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from actors.providers.base import ChatMessage, ModelReply, ModelRequest, ToolCall, Usage
from actors.providers.keys import ApiKey
from manifests.models import MockReply

DIGEST_WORDS = 24
"""How many words of the last user message an unscripted reply repeats."""


def count_words(text: str) -> int:
    return len(text.split())


def _prompt_words(messages: list[ChatMessage]) -> int:
    total = 0
    for message in messages:
        total += count_words(message.content)
        for call in message.tool_calls:
            total += count_words(json.dumps(call.arguments, sort_keys=True))
    return total


def _last_user_text(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content
    for message in reversed(messages):
        if message.content.strip():
            return message.content
    return ""


TOOL_RESULTS = "{tool_results}"


def _tool_results(messages: list[ChatMessage]) -> str:
    """The tool messages after the last assistant message, one line each."""
    found: list[str] = []
    for message in reversed(messages):
        if message.role == "assistant":
            break
        if message.role == "tool":
            found.append(message.content)
    return "\n".join(reversed(found))


def digest(text: str) -> str:
    """A short, deterministic summary: the first words and a hash of the whole text."""
    words = text.split()
    head = " ".join(words[:DIGEST_WORDS])
    if len(words) > DIGEST_WORDS:
        head += " ..."
    fingerprint = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{head} [{fingerprint}]" if head else f"(empty input) [{fingerprint}]"


def instance_of(schema: Mapping[str, Any], text: str) -> Any:
    """A value of a JSON Schema: its `const`, first `enum` value, or `default`; else by `type`
    (required properties of an object, strings as `text`, numbers 0, booleans false)."""
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: instance_of(properties.get(name, {}), text)
            for name in schema.get("required", list(properties))
        }
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [instance_of(schema.get("items", {}), text) for _ in range(count)]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text


class MockProvider:
    """Implements `ModelProvider` without a network."""

    name = "mock"

    def __init__(
        self,
        *,
        script: Mapping[str, list[MockReply]] | None = None,
        default_model: str = "mock-1",
        api_key: ApiKey | None = None,
    ) -> None:
        self._script = dict(script or {})
        self._default_model = default_model
        self._api_key = api_key

    async def complete(self, request: ModelRequest) -> ModelReply:
        if self._api_key is not None:
            self._api_key.value()  # sends it nowhere; a key that cannot be had still fails
        model = request.model or self._default_model
        replies = self._script.get(request.agent)
        if replies:
            scripted = replies[min(max(request.call_number, 0), len(replies) - 1)]
            calls = [
                ToolCall(id=f"call_{request.call_number}_{i}", name=c.name, arguments=c.arguments)
                for i, c in enumerate(scripted.tool_calls)
            ]
            content = scripted.content
            if TOOL_RESULTS in content:
                content = content.replace(TOOL_RESULTS, _tool_results(request.messages))
            outcome = scripted.outcome
            if outcome is None and not calls and request.outcomes:
                outcome = request.outcomes[0]
        else:
            calls = []
            content = f"{request.agent}: {digest(_last_user_text(request.messages))}"
            if request.output_schema is not None:
                content = json.dumps(instance_of(request.output_schema, content))
            outcome = request.outcomes[0] if request.outcomes else None
        output_words = count_words(content) + sum(
            count_words(json.dumps(c.arguments, sort_keys=True)) + 1 for c in calls
        )
        usage = Usage(
            input_tokens=max(1, _prompt_words(request.messages)),
            output_tokens=max(1, output_words),
        )
        return ModelReply(
            content=content, tool_calls=calls, outcome=outcome, usage=usage, model=model
        )

    async def aclose(self) -> None:
        return None
