"""`type: grpc` tools against real gRPC servers on 127.0.0.1: a protobuf server found by
reflection, a JSON server without reflection (Orloj's codec), and the failures (down, timeout,
status codes, error answers)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from actors.tools import ToolInvocation, ToolOptions, ToolRegistry
from actors.tools.contract import request_id
from manifests.sealing import new_private_key
from tests.tools import grpc_tool_server
from tests.tools.grpc_tool_server import ToolServer
from tests.tools.manifests_helpers import tool
from tests.tools.test_tool_auth import sealed


def invocation(timeout_s: float = 10.0, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool="lookup",
        arguments=dict(arguments),
        idempotency_key="task-9/step-1/3",
        timeout_s=timeout_s,
        task_id="task-9",
        agent="caller",
    )


def registry(target: str, timeout: str = "5s", attempts: int = 1, **spec: Any) -> ToolRegistry:
    manifest = tool(
        "lookup",
        type="grpc",
        endpoint=target,
        runtime={"timeout": timeout, "retry": {"max_attempts": attempts, "backoff": "0.01s"}},
        **spec,
    )
    return ToolRegistry({"lookup": manifest}, options=ToolOptions(grpc_plaintext=True))


@pytest.fixture
async def proto_server() -> AsyncIterator[ToolServer]:
    server = await ToolServer(grpc_tool_server.answer_ok).start()
    yield server
    await server.stop()


async def test_a_protobuf_tool_is_described_by_reflection_and_called(
    proto_server: ToolServer,
) -> None:
    tools = registry(proto_server.target)
    result = await tools.invoke(invocation(q="podium"))
    second = await tools.invoke(invocation(q="again"))
    await tools.aclose()
    assert result.ok, result
    assert (result.content, second.content) == ("found podium", "found again")
    request = proto_server.requests[0]
    assert request == {
        "tool_contract_version": "v1",
        "request_id": request_id(invocation()),
        "task_id": "task-9",
        "agent": "caller",
        "tool": {"name": "lookup", "operation": "invoke", "risk_level": "low"},
        "input_raw": '{"q":"podium"}',
        "runtime": {"mode": "grpc", "timeout_ms": 5000, "max_attempts": 1},
        "attempt": 1,
    }
    assert proto_server.metadata[0]["idempotency-key"] == "task-9/step-1/3"


async def test_a_json_tool_without_reflection_gets_orloj_json_payload() -> None:
    server = await ToolServer(grpc_tool_server.answer_ok, protobuf=False).start()
    try:
        tools = registry(server.target)
        result = await tools.invoke(invocation(q="json"))
        await tools.aclose()
    finally:
        await server.stop()
    assert result.ok and result.content == "found json"
    assert server.requests[0]["runtime"]["mode"] == "grpc"
    assert json.loads(server.requests[0]["input_raw"]) == {"q": "json"}


async def test_auth_goes_as_call_metadata() -> None:
    server = await ToolServer(grpc_tool_server.answer_ok).start()
    key = new_private_key()
    manifest = tool(
        "lookup",
        type="grpc",
        endpoint=server.target,
        auth={"profile": "api_key_header", "secretRef": "grpc-key", "headerName": "X-Api-Key"},
    )
    tools = ToolRegistry(
        {"lookup": manifest},
        secrets={"grpc-key": sealed("grpc-key", {"value": "tok-7Yq2"}, key)},
        sealing_key=key,
        options=ToolOptions(grpc_plaintext=True),
    )
    try:
        result = await tools.invoke(invocation(q="x"))
    finally:
        await tools.aclose()
        await server.stop()
    assert result.ok, result
    assert server.metadata[0]["x-api-key"] == "tok-7Yq2"
    assert server.requests[0].get("auth") is None  # the proto declares no auth: dropped


async def test_a_server_that_is_down_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tools = registry(f"127.0.0.1:{port}", timeout="2s", attempts=2)
    result = await tools.invoke(invocation())
    await tools.aclose()
    assert not result.ok and result.content == "tool lookup is unreachable"
    assert result.error.startswith("grpc UNAVAILABLE")


async def test_a_slow_server_times_out() -> None:
    server = await ToolServer(grpc_tool_server.answer_slowly).start()
    try:
        tools = registry(server.target, timeout="0.5s")
        result = await tools.invoke(invocation())
        await tools.aclose()
    finally:
        await server.stop()
    assert not result.ok and result.content.startswith("tool lookup timed out")


@pytest.mark.parametrize(
    ("code", "retried"),
    [(grpc.StatusCode.UNAUTHENTICATED, False), (grpc.StatusCode.INTERNAL, True)],
)
async def test_a_status_code_fails_the_call(code: grpc.StatusCode, retried: bool) -> None:
    async def refuse(request: dict[str, Any], context: Any) -> dict[str, Any]:
        await context.abort(code, "nope")
        raise AssertionError("abort raises")

    server = await ToolServer(refuse).start()
    try:
        tools = registry(server.target, attempts=2)
        result = await tools.invoke(invocation())
        await tools.aclose()
    finally:
        await server.stop()
    assert not result.ok
    assert result.content == f"tool lookup failed (gRPC {code.name})"
    assert result.error == f"grpc {code.name}: nope"
    assert len(server.requests) == (2 if retried else 1)


async def test_an_error_answer_carries_the_tool_code() -> None:
    async def fail(request: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "status": "error",
            "error": {"code": "index_offline", "reason": "maintenance", "retryable": True},
        }

    server = await ToolServer(fail).start()
    try:
        tools = registry(server.target, attempts=3)
        result = await tools.invoke(invocation())
        await tools.aclose()
    finally:
        await server.stop()
    assert not result.ok
    assert result.content == "tool lookup failed (index_offline): maintenance"
    assert len(server.requests) == 3
    assert [r["attempt"] for r in server.requests] == [1, 2, 3]


async def test_tls_is_the_default(proto_server: ToolServer) -> None:
    manifest = tool("lookup", type="grpc", endpoint=proto_server.target, runtime={"timeout": "2s"})
    tools = ToolRegistry({"lookup": manifest})  # no PODIUM_ACTOR_GRPC_TOOL_PLAINTEXT
    result = await tools.invoke(invocation())
    await tools.aclose()
    assert not result.ok and result.content == "tool lookup is unreachable"
    assert proto_server.requests == []
