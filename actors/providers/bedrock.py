"""The `bedrock` provider (Podium's; Orloj v0.3 has none): Amazon Bedrock's Converse API
(`POST /model/{modelId}/converse`), signed with SigV4 by botocore's signer and sent with httpx.

The endpoint names `options.region` and, in `auth.secretRef`, a Secret with `access_key_id`,
`secret_access_key` and optionally `session_token`. `base_url` defaults to the region's
`https://bedrock-runtime.<region>.amazonaws.com`. Usage is Converse's `usage`; `inputTokens`
excludes cache reads and writes, which are added (as genai-prices counts input tokens)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from actors.providers._translate import check_options, number, object_schema
from actors.providers.base import ChatMessage, ModelReply, ModelRequest, ToolCall, Usage
from actors.providers.errors import PermanentModelError, TransientModelError, error_for_status
from actors.providers.keys import ApiKey, masked
from actors.providers.outcomes import outcome_instruction, split_outcome

SUPPORTED_OPTIONS = frozenset({"region", "temperature", "top_p", "max_tokens", "stop_sequences"})
_INFERENCE = {"temperature": "temperature", "top_p": "topP", "stop_sequences": "stopSequences"}
SERVICE = "bedrock"
"""The SigV4 signing name of bedrock-runtime."""


class AwsKeys:
    """The credentials of a bedrock endpoint: each read when the provider first signs."""

    def __init__(
        self, access_key_id: ApiKey, secret_access_key: ApiKey, session_token: ApiKey | None
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token

    def credentials(self) -> Credentials:
        token = self.session_token.value() if self.session_token is not None else None
        return Credentials(self.access_key_id.value(), self.secret_access_key.value(), token)


class BedrockProvider:
    """Implements `ModelProvider` for Bedrock's Converse API."""

    name = "bedrock"

    def __init__(
        self,
        *,
        keys: AwsKeys,
        base_url: str | None = None,
        default_model: str | None = None,
        options: Mapping[str, Any] | None = None,
        where: str = "ModelEndpoint",
    ) -> None:
        self._options = check_options(
            options or {}, SUPPORTED_OPTIONS, where=where, provider=self.name
        )
        self._region = str(self._options.get("region", "")).strip()
        if not self._region:
            raise PermanentModelError(f"{where}: bedrock needs options.region", provider=self.name)
        default_url = f"https://bedrock-runtime.{self._region}.amazonaws.com"
        self._base_url = (base_url or default_url).rstrip("/")
        self._default_model = default_model
        self._keys = keys
        self._credentials: Credentials | None = None
        self._client: httpx.AsyncClient | None = None

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The Converse request body (the model id goes in the path)."""
        system, messages = to_converse_messages(request.messages, request.outcomes)
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = [{"text": system}]
        inference: dict[str, Any] = {
            wire: number(self._options[name])
            for name, wire in _INFERENCE.items()
            if name in self._options
        }
        caps = [int(number(self._options["max_tokens"]))] if "max_tokens" in self._options else []
        if request.max_output_tokens is not None:
            caps.append(request.max_output_tokens)
        if caps:
            inference["maxTokens"] = min(caps)
        if inference:
            body["inferenceConfig"] = inference
        if request.tools:
            body["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": tool.name,
                            "description": tool.description or tool.name,
                            "inputSchema": {"json": object_schema(tool.parameters)},
                        }
                    }
                    for tool in request.tools
                ]
            }
        if request.output_schema is not None:
            body["outputConfig"] = {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {
                        "jsonSchema": {
                            "name": "output",
                            "schema": json.dumps(request.output_schema),
                        }
                    },
                }
            }
        return body

    def signed(self, model: str, payload: bytes) -> tuple[str, dict[str, str]]:
        """The URL and the SigV4-signed headers of a Converse call."""
        if self._credentials is None:
            self._credentials = self._keys.credentials()
        url = f"{self._base_url}/model/{quote(model, safe='')}/converse"
        aws = AWSRequest(
            method="POST", url=url, data=payload, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(self._credentials, SERVICE, self._region).add_auth(aws)
        return url, dict(aws.headers.items())

    async def complete(self, request: ModelRequest) -> ModelReply:
        model = request.model or self._default_model
        if not model:
            raise PermanentModelError(
                "bedrock: no model named by the agent and no default_model on the endpoint",
                provider=self.name,
            )
        payload = json.dumps(self.build_body(request)).encode()
        url, headers = self.signed(model, payload)
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        try:
            response = await self._client.post(
                url, content=payload, headers=headers, timeout=request.timeout_s
            )
        except httpx.TimeoutException:
            raise TransientModelError("bedrock: request timed out", provider=self.name) from None
        except httpx.TransportError as exc:
            raise TransientModelError(
                f"bedrock: connection failed: {exc}", provider=self.name
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        return _reply(response, model, request)

    def _error(self, response: httpx.Response) -> Exception:
        try:
            message = str(response.json().get("message") or response.text[:500])
        except ValueError:
            message = response.text[:500]
        kind = response.headers.get("x-amzn-errortype", "").split(":")[0]
        text = f"{kind}: {message}" if kind else message
        error = error_for_status(self.name, response.status_code, text, response.headers)
        secret = self._credentials.secret_key if self._credentials else ""
        return masked(error, secret) if secret else error

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _reply(response: httpx.Response, model: str, request: ModelRequest) -> ModelReply:
    try:
        data = response.json()
        blocks = data["output"]["message"]["content"]
    except (ValueError, KeyError, TypeError):
        raise PermanentModelError(
            "bedrock: the reply has no output message", provider="bedrock"
        ) from None
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        if "text" in block:
            texts.append(str(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = use.get("input")
            calls.append(
                ToolCall(
                    id=str(use["toolUseId"]),
                    name=str(use["name"]),
                    arguments=arguments if isinstance(arguments, dict) else {},
                )
            )
    content, outcome = split_outcome("".join(texts), request.outcomes)
    raw = data.get("usage") or {}
    cache_read = int(raw.get("cacheReadInputTokens") or 0)
    cache_write = int(raw.get("cacheWriteInputTokens") or 0)
    usage = Usage(
        input_tokens=int(raw.get("inputTokens") or 0) + cache_read + cache_write,
        output_tokens=int(raw.get("outputTokens") or 0),
        cached_tokens=cache_read,
    )
    return ModelReply(content=content, tool_calls=calls, outcome=outcome, usage=usage, model=model)


def to_converse_messages(
    messages: list[ChatMessage], outcomes: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the Converse turns: tool results are `toolResult` blocks of a user
    turn, and consecutive turns of one role are merged (Converse wants them alternating)."""
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
                    "toolResult": {
                        "toolUseId": message.tool_call_id or "",
                        "content": [{"text": message.content}],
                    }
                }
            ]
        elif message.role == "assistant":
            role = "assistant"
            blocks = [{"text": message.content}] if message.content else []
            blocks.extend(
                {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}}
                for c in message.tool_calls
            )
        else:
            role = "user"
            blocks = [{"text": message.content}]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system_parts), turns
