"""The `ollama` provider: Ollama's native `/api/chat` (not its OpenAI-compatible `/v1`), with
tools, as Orloj calls it. No key is needed; a key an endpoint names (`auth.secretRef` or
`api_key_env`, for an Ollama behind a proxy or ollama.com) is sent as a bearer token.

Ollama's tool calls carry no ids: a call gets `call_<call_number>_<index>`, as the mock's do.
Usage is Ollama's `prompt_eval_count` and `eval_count`; a local model has no price unless the
endpoint sets `pricing`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from actors.providers._translate import check_options, number, object_schema, parse_arguments
from actors.providers.base import ChatMessage, ModelReply, ModelRequest, ToolCall, Usage
from actors.providers.errors import PermanentModelError, TransientModelError, error_for_status
from actors.providers.keys import ApiKey, masked
from actors.providers.outcomes import outcome_instruction, split_outcome

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
MODEL_OPTIONS = frozenset({"temperature", "top_p", "top_k", "seed", "num_ctx", "stop"})
"""Endpoint options sent in the request's `options` (Ollama's model parameters)."""
SUPPORTED_OPTIONS = MODEL_OPTIONS | {"keep_alive", "base_url", "default_model"}
"""`base_url` and `default_model` in `options` override the spec's, as in Orloj."""


class OllamaProvider:
    """Implements `ModelProvider` for Ollama's chat API."""

    name = "ollama"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: ApiKey | None = None,
        default_model: str | None = None,
        options: Mapping[str, Any] | None = None,
        where: str = "ModelEndpoint",
    ) -> None:
        self._options = check_options(
            options or {}, SUPPORTED_OPTIONS, where=where, provider=self.name
        )
        url = str(self._options.get("base_url") or base_url or DEFAULT_BASE_URL).strip()
        self._url = url.rstrip("/") + "/api/chat"
        self._default_model = str(self._options.get("default_model") or default_model or "")
        self._api_key = api_key
        self._key = ""
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {}
            if self._api_key is not None:
                self._key = self._api_key.value()
                headers["Authorization"] = f"Bearer {self._key}"
            self._client = httpx.AsyncClient(headers=headers, follow_redirects=False)
        return self._client

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body of `POST /api/chat` for a request."""
        model = request.model or self._default_model
        if not model:
            raise PermanentModelError(
                "ollama: no model named by the agent and no default_model on the endpoint",
                provider=self.name,
            )
        body: dict[str, Any] = {
            "model": model,
            "messages": to_ollama_messages(request.messages, request.outcomes),
            "stream": False,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": object_schema(tool.parameters),
                    },
                }
                for tool in request.tools
            ]
        if request.output_schema is not None:
            body["format"] = request.output_schema
        model_options = {k: number(self._options[k]) for k in MODEL_OPTIONS & self._options.keys()}
        if request.max_output_tokens is not None:
            model_options["num_predict"] = request.max_output_tokens
        if model_options:
            body["options"] = model_options
        if "keep_alive" in self._options:
            body["keep_alive"] = self._options["keep_alive"]
        return body

    async def complete(self, request: ModelRequest) -> ModelReply:
        body = self.build_body(request)
        client = self._get_client()
        try:
            response = await client.post(self._url, json=body, timeout=request.timeout_s)
        except httpx.TimeoutException:
            raise TransientModelError("ollama: request timed out", provider=self.name) from None
        except httpx.TransportError as exc:
            raise TransientModelError(
                f"ollama: connection failed: {exc}", provider=self.name
            ) from None
        data = _json(response)
        if response.status_code >= 400:
            text = str(data.get("error") or response.text[:500])
            error = error_for_status(self.name, response.status_code, text, response.headers)
            raise masked(error, self._key) if self._key else error
        if data.get("error"):
            raise PermanentModelError(f"ollama: {data['error']}", provider=self.name)
        message: dict[str, Any] = data.get("message") or {}
        calls = [
            ToolCall(
                id=str(call.get("id") or f"call_{request.call_number}_{index}"),
                name=str(call["function"]["name"]),
                arguments=_arguments(call["function"].get("arguments")),
            )
            for index, call in enumerate(message.get("tool_calls") or [])
            if isinstance(call, dict) and isinstance(call.get("function"), dict)
        ]
        content, outcome = split_outcome(str(message.get("content") or ""), request.outcomes)
        usage = Usage(
            input_tokens=int(data.get("prompt_eval_count") or 0),
            output_tokens=int(data.get("eval_count") or 0),
        )
        return ModelReply(
            content=content,
            tool_calls=calls,
            outcome=outcome,
            usage=usage,
            model=str(data.get("model") or body["model"]),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        if response.status_code >= 400:
            return {}
        raise PermanentModelError(
            f"ollama: the reply is not JSON (HTTP {response.status_code})", provider="ollama"
        ) from None
    return data if isinstance(data, dict) else {}


def _arguments(raw: Any) -> dict[str, Any]:
    """Ollama sends arguments as an object; some models send a JSON string."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        return parse_arguments(raw)
    return {}


def to_ollama_messages(messages: list[ChatMessage], outcomes: list[str]) -> list[dict[str, Any]]:
    """Our conversation as `/api/chat` messages: one leading system message; tool results as
    `role: tool` with the tool's name (Ollama matches results to calls by order and name)."""
    system_parts = [m.content for m in messages if m.role == "system" and m.content]
    if outcomes:
        system_parts.append(outcome_instruction(outcomes))
    result: list[dict[str, Any]] = []
    if system_parts:
        result.append({"role": "system", "content": "\n\n".join(system_parts)})
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {"function": {"name": call.name, "arguments": call.arguments}}
                    for call in message.tool_calls
                ]
            result.append(entry)
        elif message.role == "tool":
            result.append(
                {"role": "tool", "content": message.content, "tool_name": message.name or ""}
            )
        else:
            result.append({"role": "user", "content": message.content})
    return result
