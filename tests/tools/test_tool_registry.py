from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.tools import (
    PythonSandbox,
    ToolInvocation,
    ToolRegistry,
    UnknownToolError,
    redact_arguments,
)
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.tools.manifests_helpers import tool

TEST_SANDBOX = PythonSandbox(allowed_modules=("tests.tools",))

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "amount_cents": {"type": "integer"}},
    "required": ["order_id"],
}


def invocation(
    name: str, key: str = "t1/s1/0", timeout_s: float = 10.0, **arguments: object
) -> ToolInvocation:
    return ToolInvocation(
        tool=name, arguments=dict(arguments), idempotency_key=key, timeout_s=timeout_s
    )


async def test_builtins_are_always_there_with_specs() -> None:
    registry = ToolRegistry()
    try:
        assert registry.names() == ["read-url", "web-search"]
        spec = registry.spec_for("web-search")
        assert spec.parameters["required"] == ["query"]
        with pytest.raises(UnknownToolError, match="web-serch"):
            registry.spec_for("web-serch")
        result = await registry.invoke(invocation("web-serch", query="x"))
        assert not result.ok and "no tool named" in result.content
    finally:
        await registry.aclose()


async def test_http_tool_posts_with_idempotency_key(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body={"refund": "r-1"}))
    registry = ToolRegistry(
        {"refund": tool("refund", endpoint=fake_server.url + "/refund", input_schema=SCHEMA)}
    )
    try:
        spec = registry.spec_for("refund")
        assert spec.parameters["additionalProperties"] is False
        result = await registry.invoke(
            invocation("refund", key="task-9/step-2/3", order_id="o1", amount_cents=5)
        )
        assert result.ok, result
        assert '"refund": "r-1"' in result.content
        (request,) = fake_server.requests
        assert request.method == "POST" and request.path == "/refund"
        assert request.headers["idempotency-key"] == "task-9/step-2/3"
        assert request.json() == {"order_id": "o1", "amount_cents": 5}
    finally:
        await registry.aclose()


async def test_http_tool_rejects_unknown_fields_before_calling(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body={}))
    registry = ToolRegistry(
        {"refund": tool("refund", endpoint=fake_server.url, input_schema=SCHEMA)}
    )
    try:
        result = await registry.invoke(
            invocation("refund", order_id="o1", amount_cents=5, note="x")
        )
        assert not result.ok
        assert "'note' was unexpected" in result.content
        wrong_type = await registry.invoke(invocation("refund", order_id="o1", amount_cents="five"))
        assert not wrong_type.ok and "amount_cents" in wrong_type.content
        missing = await registry.invoke(invocation("refund"))
        assert not missing.ok and "'order_id' is a required property" in missing.content
        assert fake_server.requests == []
    finally:
        await registry.aclose()


async def test_http_tool_error_is_safe_for_the_model(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(status=400, body="invalid order; db password=hunter2"))
    registry = ToolRegistry(
        {"refund": tool("refund", endpoint=fake_server.url, input_schema=SCHEMA)}
    )
    try:
        result = await registry.invoke(invocation("refund", order_id="o1"))
        assert not result.ok
        assert result.content == "tool refund failed (HTTP 400)"
        assert "hunter2" in result.error
        assert len(fake_server.requests) == 1
    finally:
        await registry.aclose()


async def test_http_tool_retries_5xx_with_the_same_key(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(status=503, body="busy"), Reply(body="done"))
    manifest = tool(
        "refund",
        endpoint=fake_server.url,
        input_schema=SCHEMA,
        runtime={"timeout": "5s", "retry": {"max_attempts": 3, "backoff": "10ms"}},
    )
    registry = ToolRegistry({"refund": manifest})
    try:
        result = await registry.invoke(invocation("refund", key="t/s/1", order_id="o1"))
        assert result.ok and result.content == "done"
        assert [r.headers["idempotency-key"] for r in fake_server.requests] == ["t/s/1", "t/s/1"]
    finally:
        await registry.aclose()


async def test_http_tool_timeout(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body="late", delay_s=2.0))
    manifest = tool("slow", endpoint=fake_server.url, runtime={"timeout": "200ms"})
    registry = ToolRegistry({"slow": manifest})
    try:
        result = await registry.invoke(invocation("slow"))
        assert not result.ok
        assert result.content.startswith("tool slow timed out")
    finally:
        await registry.aclose()


async def test_python_tools_sync_async_errors_timeouts_and_retries(tmp_path: Path) -> None:
    tools = {
        "add": tool(
            "add",
            type="python",
            endpoint="tests.tools.sample_tools:add",
            input_schema={
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            },
        ),
        "shout": tool("shout", type="python", endpoint="tests.tools.sample_tools:shout"),
        "boom": tool("boom", type="python", endpoint="tests.tools.sample_tools:boom"),
        "slow": tool(
            "slow",
            type="python",
            endpoint="tests.tools.sample_tools:slow",
            runtime={"timeout": "100ms"},
        ),
        "flaky": tool(
            "flaky",
            type="python",
            endpoint="tests.tools.sample_tools:flaky",
            runtime={"retry": {"max_attempts": 3, "backoff": "1ms"}},
        ),
        "missing": tool("missing", type="python", endpoint="tests.tools.sample_tools:nope"),
    }
    registry = ToolRegistry(tools, python=TEST_SANDBOX)
    try:
        assert (await registry.invoke(invocation("add", a=2, b=3))).content == '{"sum": 5}'
        assert (await registry.invoke(invocation("shout", text="hi"))).content == "HI"
        boom = await registry.invoke(invocation("boom", password="hunter2"))
        assert not boom.ok and boom.content == "tool boom failed (RuntimeError)"
        assert "hunter2" not in boom.content and "Traceback" not in boom.content
        slow = await registry.invoke(invocation("slow"))
        assert not slow.ok and "timed out" in slow.content
        flaky = await registry.invoke(invocation("flaky", counter=str(tmp_path / "flaky")))
        assert flaky.ok and flaky.content == "ok after 3"
        missing = await registry.invoke(invocation("missing"))
        assert not missing.ok and missing.content == "the tool is not available"
        assert "nope" in missing.error
    finally:
        await registry.aclose()


def test_mcp_tools_are_reported_unsupported() -> None:
    registry = ToolRegistry({"files": tool("files", type="mcp", mcp_server="fs")})
    assert "files" not in registry
    with pytest.raises(Exception, match="type mcp is not supported"):
        registry.spec_for("files")


def test_bad_schema_is_rejected_at_build() -> None:
    with pytest.raises(Exception, match="Tool/bad: input_schema is not a valid JSON Schema"):
        ToolRegistry(
            {"bad": tool("bad", endpoint="http://127.0.0.1:9/", input_schema={"type": "objekt"})}
        )


def test_redact_arguments() -> None:
    redacted = redact_arguments(
        {
            "query": "x",
            "password": "p",
            "API_KEY": "k",
            "nested": {"Authorization": "Bearer t", "items": [{"client_secret": "s", "n": 1}]},
            "access_token": "t",
        }
    )
    assert redacted == {
        "query": "x",
        "password": "***",
        "API_KEY": "***",
        "nested": {"Authorization": "***", "items": [{"client_secret": "***", "n": 1}]},
        "access_token": "***",
    }


async def test_http_tool_retry_honours_orlojs_backoff_max_backoff_and_jitter(
    fake_server: FakeHTTPServer,
) -> None:
    # jitter none: the waits are exactly 300ms, then min(600ms, max_backoff 300ms).
    fake_server.queue(
        Reply(status=503, body="busy"), Reply(status=503, body="busy"), Reply(body="ok")
    )
    retry = {"max_attempts": 3, "backoff": "300ms", "max_backoff": "300ms", "jitter": "none"}
    manifest = tool("flaky", endpoint=fake_server.url, runtime={"timeout": "30s", "retry": retry})
    registry = ToolRegistry({"flaky": manifest})
    try:
        started = time.monotonic()
        result = await registry.invoke(invocation("flaky", timeout_s=30.0))
        assert result.ok and result.content == "ok"
        assert time.monotonic() - started >= 0.6
    finally:
        await registry.aclose()


async def test_http_tool_backoff_zero_retries_at_once(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(status=503, body="busy"), Reply(body="at once"))
    immediate = tool(
        "now", endpoint=fake_server.url, runtime={"retry": {"max_attempts": 2, "backoff": "0s"}}
    )
    registry = ToolRegistry({"now": immediate})
    try:
        result = await registry.invoke(invocation("now"))
        assert result.ok and result.content == "at once"
    finally:
        await registry.aclose()
