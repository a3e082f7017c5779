"""Orloj's grpc, wasm and webhook-callback tools on the real stack: the mock model calls them,
the policy service authorizes each call (an AgentPolicy blocks one), the grpc server (with
reflection) gets Orloj's envelope with the task and the agent, the wasm module runs in the
actor, and every call is recorded as `tool.called`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.settings import ActorSettings
from tests.actors.conftest import FAST_ACTOR, Runtime
from tests.helpers import wait_until
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.tools import grpc_tool_server, wasm_guests
from tests.tools.grpc_tool_server import ToolServer
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration

SYSTEM = """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: mock}
spec:
  provider: mock
  default_model: mock-1
  options:
    script:
      caller:
        - tool_calls: [{name: lookup, arguments: {q: "podium"}}]
        - tool_calls: [{name: wasm_echo, arguments: {}}]
        - tool_calls: [{name: batch-job, arguments: {n: 1}}]
        - content: "done"
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: caller}
spec: {model_ref: mock, tools: [lookup, wasm_echo, batch-job]}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: tool-types}
spec: {agents: [caller]}
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {name: no-batch}
spec:
  target_systems: [tool-types]
  blocked_tools: [batch-job]
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: lookup}
spec:
  type: grpc
  endpoint: %(grpc)s
  input_schema: {type: object, properties: {q: {type: string}}}
  runtime: {timeout: 10s}
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: wasm_echo}
spec:
  type: wasm
  endpoint: echo_guest.wat
  risk_level: high
  runtime: {timeout: 5s}
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: batch-job}
spec:
  type: webhook-callback
  endpoint: %(webhook)s/jobs
"""


@pytest.fixture
async def grpc_server() -> AsyncIterator[ToolServer]:
    server = await ToolServer(grpc_tool_server.answer_ok).start()
    yield server
    await server.stop()


async def test_grpc_and_wasm_tools_run_through_the_policy_service(
    runtime: Runtime, tmp_path: Path, grpc_server: ToolServer
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "echo_guest.wat").write_text(wasm_guests.ORLOJ_REFERENCE.read_text())
    webhook = FakeHTTPServer().start()
    webhook.queue(Reply(status=500, body="must not be called"))
    try:
        file = tmp_path / "system.yaml"
        file.write_text(SYSTEM % {"grpc": grpc_server.target, "webhook": webhook.url})
        settings = ActorSettings.model_validate(
            {**FAST_ACTOR.model_dump(), "grpc_tool_plaintext": True, "wasm_module_dir": modules}
        )
        await runtime.start([file], settings=settings)
        task_id = await runtime.submit("tool-types", "call the tools")
        result = await runtime.result(task_id, timeout=90)
        assert isinstance(result, TaskCompleted), result
        await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))
    finally:
        webhook.stop()

    called = {e.data["tool"]: e.data for e in runtime.collector.of_type(task_id, "tool.called")}
    assert {tool: data["status"] for tool, data in called.items()} == {
        "lookup": "ok",
        "wasm_echo": "ok",
        "batch-job": "denied",
    }, called
    decided = {
        e.data["tool"]: e.data["decision"]
        for e in runtime.collector.of_type(task_id, "policy.decided")
        if e.data.get("tool")
    }
    assert decided == {"lookup": "allow", "wasm_echo": "allow", "batch-job": "deny"}
    assert webhook.requests == []

    [request] = grpc_server.requests
    assert request["task_id"] == task_id and request["agent"] == "caller"
    assert json.loads(request["input_raw"]) == {"q": "podium"}
    assert request["request_id"].startswith("podium-")
    assert called["lookup"]["idempotency_key"] == grpc_server.metadata[0]["idempotency-key"]
