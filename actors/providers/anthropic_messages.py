"""The `anthropic` provider: the Messages API through the `anthropic` SDK.

SDK retries are off (`max_retries=0`); `podium.core.retry.retry_transient` is the one retrying
layer.
`Usage.input_tokens` counts every input token, cache reads and writes included (as OpenAI and
genai-prices count them); `Usage.cached_tokens` is the cache reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anthropic

from actors.providers._translate import (
    check_options,
    from_wire,
    object_schema,
    request_params,
    translate_sdk_error,
    wire_name,
)
from actors.providers.base import ChatMessage, ModelReply, ModelRequest, ToolCall, Usage
from actors.providers.errors import PermanentModelError
from actors.providers.keys import ApiKey, EnvKey, masked
from actors.providers.outcomes import outcome_instruction, split_outcome

DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` is required by the Messages API; used when the request and options name none."""

SUPPORTED_OPTIONS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "max_tokens",
        "anthropic_version",
        "extra_headers",
        "extra_body",
    }
)
"""`anthropic_version` (Orloj's) is sent as the `anthropic-version` header."""
_REQUEST_OPTIONS = frozenset({"temperature", "top_p", "top_k", "stop_sequences"})


class AnthropicProvider:
    """Implements `ModelProvider` for Anthropic's Messages API."""

    name = "anthropic"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: ApiKey | None = None,
        default_model: str | None = None,
        options: Mapping[str, Any] | None = None,
        where: str = "ModelEndpoint",
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key or EnvKey(self.name, "ANTHROPIC_API_KEY")
        self._key = ""
        self._default_model = default_model
        self._options = check_options(
            options or {}, SUPPORTED_OPTIONS, where=where, provider=self.name
        )
        self._client: anthropic.AsyncAnthropic | None = None

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._key = self._api_key.value()
            version = str(self._options.get("anthropic_version", "")).strip()
            self._client = anthropic.AsyncAnthropic(
                api_key=self._key,
                base_url=self._base_url,
                max_retries=0,
                default_headers={"anthropic-version": version} if version else None,
            )
        return self._client

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of `messages.create` for a request."""
        model = request.model or self._default_model
        if not model:
            raise PermanentModelError(
                "anthropic: no model named by the agent and no default_model on the endpoint",
                provider=self.name,
            )
        max_tokens = _max_tokens(self._options.get("max_tokens"), request.max_output_tokens)
        system, messages = to_anthropic_messages(request.messages, request.outcomes)
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {
                    "name": wire_name(tool.name),
                    "description": tool.description,
                    "input_schema": object_schema(tool.parameters),
                }
                for tool in request.tools
            ]
        if request.output_schema is not None:
            params["output_config"] = {
                "format": {"type": "json_schema", "schema": request.output_schema}
            }
        return request_params(params, self._options, _REQUEST_OPTIONS, request.timeout_s)

    async def complete(self, request: ModelRequest) -> ModelReply:
        params = self.build_params(request)
        client = self._get_client()
        try:
            response = await client.messages.create(**params)
        except anthropic.AnthropicError as exc:
            error = translate_sdk_error(
                self.name,
                exc,
                status_error=anthropic.APIStatusError,
                timeout_error=anthropic.APITimeoutError,
                connection_error=anthropic.APIConnectionError,
            )
            if self._key and self._key in f"{exc!r} {error}":
                raise masked(error, self._key) from None  # the cause holds the key too
            raise error from exc
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in response.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else {}
                name = from_wire(block.name, request.tools)
                calls.append(ToolCall(id=block.id, name=name, arguments=dict(arguments)))
        content, outcome = split_outcome("".join(texts), request.outcomes)
        raw = response.usage
        cache_read = raw.cache_read_input_tokens or 0
        cache_write = raw.cache_creation_input_tokens or 0
        usage = Usage(
            input_tokens=raw.input_tokens + cache_read + cache_write,
            output_tokens=raw.output_tokens,
            cached_tokens=cache_read,
        )
        return ModelReply(
            content=content, tool_calls=calls, outcome=outcome, usage=usage, model=response.model
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _max_tokens(option: Any, cap: int | None) -> int:
    """The endpoint's `max_tokens`, within the actor's cap on output tokens (the lower wins)."""
    if option is None:
        return cap or DEFAULT_MAX_TOKENS
    try:
        chosen = int(str(option).strip())
    except ValueError:
        raise PermanentModelError(
            f"anthropic: options.max_tokens {option!r} is not a whole number", provider="anthropic"
        ) from None
    return min(chosen, cap) if cap else chosen


def to_anthropic_messages(
    messages: list[ChatMessage], outcomes: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the Messages API turns. Tool results become `tool_result` blocks of
    a user turn; consecutive turns of one role are merged, as the API requires alternation."""
    system_parts = [m.content for m in messages if m.role == "system" and m.content]
    if outcomes:
        system_parts.append(outcome_instruction(outcomes))
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks: list[dict[str, Any]]
        if message.role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                }
            ]
        elif message.role == "assistant":
            role = "assistant"
            blocks = [{"type": "text", "text": message.content}] if message.content else []
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": wire_name(c.name), "input": c.arguments}
                for c in message.tool_calls
            )
        else:
            role = "user"
            blocks = [{"type": "text", "text": message.content}]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system_parts), turns
