"""`bedrock`: the Converse API against a fake bedrock-runtime on 127.0.0.1. The fake checks the
SigV4 signature the way AWS does (it signs the request it got again with the same credentials)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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
from tests.providers.fake_http import FakeHTTPServer, Recorded, Reply
from tests.providers.test_secret_ref import KEY, sealed

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
AWS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"}
SEARCH = ToolSpec(
    name="web-search", parameters={"type": "object", "properties": {"q": {"type": "string"}}}
)


def converse(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {
            "inputTokens": 100,
            "outputTokens": 20,
            "totalTokens": 150,
            "cacheReadInputTokens": 30,
            "cacheWriteInputTokens": 0,
        },
        "metrics": {"latencyMs": 12},
    }


def bedrock(server: FakeHTTPServer, values: dict[str, str] = AWS, **options: Any) -> Any:
    return make_provider(
        endpoint(
            "claude-on-bedrock",
            provider="bedrock",
            base_url=server.url,
            default_model=MODEL,
            options={"region": "eu-west-1", **options},
            auth={"secretRef": "aws-bedrock"},
        ),
        sealed("aws-bedrock", values),
        sealing_key=KEY,
    )


def signature_ok(sent: Recorded, server: FakeHTTPServer, values: dict[str, str]) -> bool:
    """Sign the received request again, as AWS checks it: same signed headers, same time."""
    auth_header = sent.headers["authorization"]
    signed = auth_header.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method=sent.method,
        url=server.url + sent.path,
        data=sent.body,
        headers={name: sent.headers[name] for name in signed},
    )
    request.context["timestamp"] = sent.headers["x-amz-date"]
    credentials = Credentials(
        values["access_key_id"], values["secret_access_key"], values.get("session_token")
    )
    signer = SigV4Auth(credentials, "bedrock", "eu-west-1")
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return auth_header.endswith(f"Signature={expected}") and (
        "Credential=AKIDEXAMPLE/" in auth_header
        and "/eu-west-1/bedrock/aws4_request" in auth_header
    )


async def test_tool_use_round_trip_signed_and_priced(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(
        Reply(
            body=converse(
                [
                    {"text": "Searching."},
                    {"toolUse": {"toolUseId": "tu_1", "name": "web-search", "input": {"q": "x"}}},
                ],
                stop="tool_use",
            )
        ),
        Reply(body=converse([{"text": "It is x."}])),
    )
    provider = bedrock(fake_server, temperature="0.3", max_tokens="512")
    conversation = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="find x"),
    ]
    try:
        first = await provider.complete(
            ModelRequest(
                agent="a",
                model=MODEL,
                messages=conversation,
                tools=[SEARCH],
                max_output_tokens=1024,
                timeout_s=10,
            )
        )
        second = await provider.complete(
            ModelRequest(
                agent="a",
                model=MODEL,
                messages=[
                    *conversation,
                    ChatMessage(
                        role="assistant", content="Searching.", tool_calls=first.tool_calls
                    ),
                    ChatMessage(role="tool", content="x found", tool_call_id="tu_1"),
                ],
                tools=[SEARCH],
                timeout_s=10,
            )
        )
    finally:
        await provider.aclose()
    sent = fake_server.requests[0]
    assert sent.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    assert signature_ok(sent, fake_server, AWS)
    assert not signature_ok(sent, fake_server, {**AWS, "secret_access_key": "other"})
    assert "x-amz-security-token" not in sent.headers
    body = sent.json()
    assert body["system"] == [{"text": "Be brief."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "find x"}]}]
    assert body["inferenceConfig"] == {"temperature": 0.3, "maxTokens": 512}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": SEARCH.parameters}
    assert first.tool_calls == [ToolCall(id="tu_1", name="web-search", arguments={"q": "x"})]
    assert first.content == "Searching."
    turns = fake_server.requests[1].json()["messages"]
    assert turns[1] == {
        "role": "assistant",
        "content": [
            {"text": "Searching."},
            {"toolUse": {"toolUseId": "tu_1", "name": "web-search", "input": {"q": "x"}}},
        ],
    }
    assert turns[2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "tu_1", "content": [{"text": "x found"}]}}],
    }
    assert second.content == "It is x."
    assert (second.usage.input_tokens, second.usage.cached_tokens) == (130, 30)
    assert second.usage.output_tokens == 20
    priced = price_call("bedrock", second.model, second.usage, None)
    assert priced.source == "genai-prices" and priced.cost_usd and priced.cost_usd > 0


async def test_session_token_and_output_schema(fake_server: FakeHTTPServer) -> None:
    values = {**AWS, "session_token": "FwoGZXIvYXdzEXAMPLE"}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fake_server.queue(Reply(body=converse([{"text": '{"n": 2}'}])))
    provider = bedrock(fake_server, values)
    try:
        reply = await provider.complete(
            ModelRequest(
                agent="a",
                model=MODEL,
                messages=[ChatMessage(role="user", content="n?")],
                output_schema=schema,
                timeout_s=10,
            )
        )
    finally:
        await provider.aclose()
    sent = fake_server.requests[0]
    assert sent.headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLE"
    assert signature_ok(sent, fake_server, values)
    text_format = sent.json()["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert text_format["structure"]["jsonSchema"]["name"] == "output"
    assert (
        text_format["structure"]["jsonSchema"]["schema"]
        == '{"type": "object", "properties": {"n": {"type": "integer"}}}'
    )
    assert reply.content == '{"n": 2}'


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (400, "ValidationException", PermanentModelError),
        (429, "ThrottlingException", TransientModelError),
    ],
)
async def test_errors_name_the_aws_error_type(
    fake_server: FakeHTTPServer, status: int, kind: str, error: type[Exception]
) -> None:
    fake_server.queue(
        Reply(
            status=status,
            body={"message": "something about " + AWS["secret_access_key"]},
            headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/"},
        )
    )
    provider = bedrock(fake_server)
    try:
        with pytest.raises(error, match=kind) as caught:
            await provider.complete(
                ModelRequest(
                    agent="a", model=MODEL, messages=[ChatMessage(role="user", content="hi")]
                )
            )
    finally:
        await provider.aclose()
    assert AWS["secret_access_key"] not in str(caught.value)


async def test_a_secret_without_the_aws_keys_fails_the_call(fake_server: FakeHTTPServer) -> None:
    provider = bedrock(fake_server, {"value": "nope"})
    try:
        with pytest.raises(PermanentModelError, match="has no key 'access_key_id'"):
            await provider.complete(
                ModelRequest(
                    agent="a", model=MODEL, messages=[ChatMessage(role="user", content="hi")]
                )
            )
    finally:
        await provider.aclose()
    assert fake_server.requests == []
