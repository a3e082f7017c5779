"""`azure-openai`: the openai SDK's `AsyncAzureOpenAI` against a fake Azure OpenAI resource on
127.0.0.1: the deployment in the path, `api-version` in the query, the key in `api-key`."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from actors.providers import ChatMessage, ModelRequest, PermanentModelError, ToolSpec, make_provider
from podium.core.pricing import price_call
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.providers.test_openai_provider import completion
from tests.providers.test_secret_ref import KEY, PLAIN, sealed

SEARCH = ToolSpec(
    name="web-search", parameters={"type": "object", "properties": {"q": {"type": "string"}}}
)


def azure(server: FakeHTTPServer, **options: Any) -> Any:
    return make_provider(
        endpoint(
            "azure-openai-default",
            provider="azure-openai",
            base_url=server.url,
            default_model="gpt-4o-deployment",
            options=options,
            auth={"secretRef": "azure-openai-api-key"},
        ),
        sealed("azure-openai-api-key", {"value": PLAIN}),
        sealing_key=KEY,
    )


def ask(**fields: Any) -> ModelRequest:
    return ModelRequest(
        agent="a",
        model="gpt-4o-deployment",
        messages=[ChatMessage(role="user", content="find it")],
        timeout_s=10,
        **fields,
    )


async def test_deployment_path_api_version_key_tools_and_usage(
    fake_server: FakeHTTPServer,
) -> None:
    fake_server.queue(
        Reply(
            body=completion(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "web-search", "arguments": '{"q": "x"}'},
                        }
                    ],
                }
            )
        )
    )
    provider = azure(fake_server, api_version="2024-10-21")
    try:
        reply = await provider.complete(ask(tools=[SEARCH]))
    finally:
        await provider.aclose()
    sent = fake_server.requests[0]
    url = urlsplit(sent.path)
    assert url.path == "/openai/deployments/gpt-4o-deployment/chat/completions"
    assert parse_qs(url.query) == {"api-version": ["2024-10-21"]}
    assert sent.headers["api-key"] == PLAIN
    assert "authorization" not in sent.headers
    body = sent.json()
    assert body["tools"][0]["function"]["name"] == "web-search"
    assert reply.tool_calls[0].name == "web-search"
    assert reply.tool_calls[0].arguments == {"q": "x"}
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (120, 30)
    # Azure answers with the model behind the deployment, which genai-prices knows.
    priced = price_call("azure-openai", reply.model, reply.usage, None)
    assert priced.source == "genai-prices" and priced.cost_usd and priced.cost_usd > 0


async def test_orloj_default_api_version_and_the_deployment_option(
    fake_server: FakeHTTPServer,
) -> None:
    fake_server.queue(Reply(body=completion({"content": "done"})))
    provider = azure(fake_server, deployment="prod-4o")
    try:
        reply = await provider.complete(ask())
    finally:
        await provider.aclose()
    url = urlsplit(fake_server.requests[0].path)
    assert url.path == "/openai/deployments/prod-4o/chat/completions"
    assert parse_qs(url.query) == {"api-version": ["2024-10-21"]}
    assert reply.content == "done"


async def test_output_schema_is_sent_as_response_format(fake_server: FakeHTTPServer) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fake_server.queue(Reply(body=completion({"content": '{"n": 3}'})))
    provider = azure(fake_server)
    try:
        reply = await provider.complete(ask(output_schema=schema))
    finally:
        await provider.aclose()
    assert fake_server.requests[0].json()["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert reply.content == '{"n": 3}'


async def test_an_unknown_option_is_refused_naming_the_supported_ones(
    fake_server: FakeHTTPServer,
) -> None:
    with pytest.raises(PermanentModelError, match=r"options.api_verison .*api_version"):
        azure(fake_server, api_verison="2024-10-21")
