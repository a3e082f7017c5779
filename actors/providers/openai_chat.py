"""The `openai` and `openai-compatible` providers: Chat Completions through the `openai` SDK
(`azure-openai` is a subclass, `actors.providers.azure_openai`).

SDK retries are off (`max_retries=0`); `podium.core.retry.retry_transient` is the one retrying
layer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import openai

from actors.providers._translate import (
    check_options,
    from_wire,
    object_schema,
    parse_arguments,
    request_params,
    translate_sdk_error,
    wire_name,
)
from actors.providers.base import ChatMessage, ModelReply, ModelRequest, ToolCall, Usage
from actors.providers.errors import PermanentModelError
from actors.providers.keys import ApiKey, EnvKey, masked
from actors.providers.outcomes import outcome_instruction, split_outcome

SUPPORTED_OPTIONS = frozenset(
    {"temperature", "top_p", "seed", "stop", "reasoning_effort", "extra_headers", "extra_body"}
)
"""Endpoint `options` passed through to `chat.completions.create`."""

_REQUEST_OPTIONS = frozenset({"temperature", "top_p", "seed", "stop", "reasoning_effort"})


class OpenAIChatProvider:
    """Implements `ModelProvider` for `openai` and OpenAI-compatible servers (`base_url`)."""

    def __init__(
        self,
        *,
        name: str = "openai",
        base_url: str | None = None,
        api_key: ApiKey | None = None,
        default_model: str | None = None,
        options: Mapping[str, Any] | None = None,
        where: str = "ModelEndpoint",
        supported: frozenset[str] = SUPPORTED_OPTIONS,
    ) -> None:
        self.name = name
        self._base_url = base_url
        self._api_key = api_key or EnvKey(name, "OPENAI_API_KEY")
        self._key = ""
        self._default_model = default_model
        self._options = check_options(options or {}, supported, where=where, provider=name)
        self._client: openai.AsyncOpenAI | None = None

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._key = self._api_key.value()
            self._client = self._make_client(self._key)
        return self._client

    def _make_client(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=key, base_url=self._base_url, max_retries=0)

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of `chat.completions.create` for a request."""
        model = request.model or self._default_model
        if not model:
            raise PermanentModelError(
                f"{self.name}: no model named by the agent and no default_model on the endpoint",
                provider=self.name,
            )
        params: dict[str, Any] = {
            "model": model,
            "messages": to_openai_messages(request.messages, request.outcomes),
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": wire_name(tool.name),
                        "description": tool.description,
                        "parameters": object_schema(tool.parameters),
                    },
                }
                for tool in request.tools
            ]
        if request.max_output_tokens is not None:
            key = "max_tokens" if self.name == "openai-compatible" else "max_completion_tokens"
            params[key] = request.max_output_tokens
        if request.output_schema is not None:
            # Not `strict`: strict mode refuses most hand-written schemas (it wants every
            # property required and additionalProperties false); the loop validates the answer.
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.output_schema},
            }
        return request_params(params, self._options, _REQUEST_OPTIONS, request.timeout_s)

    async def complete(self, request: ModelRequest) -> ModelReply:
        params = self.build_params(request)
        client = self._get_client()
        try:
            response = await client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            error = translate_sdk_error(
                self.name,
                exc,
                status_error=openai.APIStatusError,
                timeout_error=openai.APITimeoutError,
                connection_error=openai.APIConnectionError,
            )
            if self._key and self._key in f"{exc!r} {error}":
                raise masked(error, self._key) from None  # the cause holds the key too
            raise error from exc
        if not response.choices:
            raise PermanentModelError(f"{self.name}: the reply has no choices", provider=self.name)
        message = response.choices[0].message
        calls = [
            ToolCall(
                id=call.id,
                name=from_wire(call.function.name, request.tools),
                arguments=parse_arguments(call.function.arguments),
            )
            for call in (message.tool_calls or [])
            if call.type == "function"
        ]
        content, outcome = split_outcome(message.content or "", request.outcomes)
        usage = Usage()
        if response.usage is not None:
            details = response.usage.prompt_tokens_details
            usage = Usage(
                input_tokens=response.usage.prompt_tokens,
                output_tokens=response.usage.completion_tokens,
                cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
            )
        return ModelReply(
            content=content, tool_calls=calls, outcome=outcome, usage=usage, model=response.model
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def to_openai_messages(messages: list[ChatMessage], outcomes: list[str]) -> list[dict[str, Any]]:
    """Our conversation as Chat Completions messages. System messages (and the outcome
    instruction) are joined into one leading system message, which every compatible server takes."""
    system_parts = [m.content for m in messages if m.role == "system" and m.content]
    if outcomes:
        system_parts.append(outcome_instruction(outcomes))
    result: list[dict[str, Any]] = []
    if system_parts:
        result.append({"role": "system", "content": "\n\n".join(system_parts)})
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "user":
            result.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": wire_name(call.name),
                            "arguments": json.dumps(call.arguments),
                        },
                    }
                    for call in message.tool_calls
                ]
            result.append(entry)
        else:
            result.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
    return result
