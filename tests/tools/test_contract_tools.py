"""`external` and `webhook-callback` tools against a fake HTTP tool on 127.0.0.1: Orloj's
`ToolExecutionRequest` is what they receive, a `ToolExecutionResponse` what they answer; the
webhook-callback tool is polled at `{endpoint}/{request_id}` until its result is ready."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from actors.tools import ToolInvocation, ToolOptions, ToolRegistry
from actors.tools.contract import request_id
from tests.providers.fake_http import FakeHTTPServer, Reply
from tests.tools.manifests_helpers import tool


def invocation(name: str, timeout_s: float = 10.0, **arguments: object) -> ToolInvocation:
    return ToolInvocation(
        tool=name,
        arguments=dict(arguments),
        idempotency_key="task-1/step-2/0",
        timeout_s=timeout_s,
        task_id="task-1",
        agent="caller",
    )


def registry(kind: str, endpoint: str, timeout: str = "5s", attempts: int = 1) -> ToolRegistry:
    manifest = tool(
        "svc",
        type=kind,
        endpoint=endpoint,
        risk_level="medium",
        input_schema={"type": "object", "properties": {"q": {"type": "string"}}},
        runtime={"timeout": timeout, "retry": {"max_attempts": attempts, "backoff": "0.01s"}},
    )
    return ToolRegistry({"svc": manifest}, options=ToolOptions(webhook_poll_interval_s=0.05))


def ok(result: str) -> dict[str, Any]:
    return {"tool_contract_version": "v1", "status": "ok", "output": {"result": result}}


@pytest.mark.parametrize("kind", ["external", "webhook-callback"])
async def test_the_tool_receives_orloj_request_envelope(
    fake_server: FakeHTTPServer, kind: str
) -> None:
    fake_server.queue(Reply(body=ok("  42 results  ")))
    tools = registry(kind, fake_server.url + "/execute")
    result = await tools.invoke(invocation("svc", q="podium"))
    await tools.aclose()
    assert result.ok, result
    assert result.content == "42 results"
    [sent] = fake_server.requests
    assert sent.method == "POST" and sent.path == "/execute"
    assert sent.headers["x-tool-contract-version"] == "v1"
    assert sent.headers["idempotency-key"] == "task-1/step-2/0"
    envelope = sent.json()
    assert envelope == {
        "tool_contract_version": "v1",
        "request_id": request_id(invocation("svc")),
        "task_id": "task-1",
        "agent": "caller",
        "tool": {"name": "svc", "operation": "invoke", "risk_level": "medium"},
        "input_raw": '{"q":"podium"}',
        "runtime": {"mode": kind, "timeout_ms": 5000, "max_attempts": 1},
        "attempt": 1,
    }


async def test_a_retryable_error_is_attempted_again_with_the_same_request_id(
    fake_server: FakeHTTPServer,
) -> None:
    failure = {
        "status": "error",
        "error": {"code": "rate_limited", "reason": "quota", "retryable": True, "message": "slow"},
    }
    fake_server.queue(Reply(body=failure), Reply(body=ok("done")))
    tools = registry("external", fake_server.url, attempts=3)
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert result.ok and result.content == "done"
    first, second = (r.json() for r in fake_server.requests)
    assert first["request_id"] == second["request_id"]
    assert (first["attempt"], second["attempt"]) == (1, 2)


@pytest.mark.parametrize(
    ("reply", "content", "error"),
    [
        (
            Reply(body={"status": "error", "error": {"code": "bad_query", "message": "no"}}),
            "tool svc failed (bad_query): no",
            "error: bad_query: no",
        ),
        (
            Reply(body={"status": "denied", "error": {"code": "policy", "reason": "pii"}}),
            "the tool svc denied the call (policy): pii",
            "denied: policy (pii): pii",
        ),
        (
            Reply(body={"status": "error"}),
            "tool svc failed",
            "contract: status error without an error envelope",
        ),
        (
            Reply(body="<html>oops</html>"),
            "tool svc returned an invalid contract response",
            "contract: the response is not JSON",
        ),
        (
            Reply(body={"status": "ok", "output": {"result": {"rows": 1}}}),
            "tool svc returned an invalid contract response",
            "contract: output.result must be a string",
        ),
        (Reply(status=404, body="gone"), "tool svc failed (HTTP 404)", "HTTP 404 from POST"),
    ],
)
async def test_a_failed_or_bad_answer_fails_the_call_with_its_reason(
    fake_server: FakeHTTPServer, reply: Reply, content: str, error: str
) -> None:
    fake_server.queue(reply)
    tools = registry("external", fake_server.url)
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert not result.ok
    assert result.content == content
    assert result.error.startswith(error), result.error


async def test_a_tool_that_is_down_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tools = registry("external", f"http://127.0.0.1:{port}/x", attempts=2)
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert not result.ok and result.content == "tool svc is unreachable"


async def test_a_slow_tool_times_out(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(body=ok("late"), delay_s=3))
    tools = registry("external", fake_server.url, timeout="0.3s")
    started = time.monotonic()
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert not result.ok and result.content.startswith("tool svc timed out")
    assert time.monotonic() - started < 2.5


async def test_webhook_callback_polls_until_the_result_is_ready(
    fake_server: FakeHTTPServer,
) -> None:
    fake_server.queue(
        Reply(status=202, body={"status": "pending"}),
        Reply(status=202),
        Reply(status=200, body={"status": "pending"}),
        Reply(status=204),
        Reply(body=ok("batch finished")),
    )
    tools = registry("webhook-callback", fake_server.url + "/jobs/")
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert result.ok and result.content == "batch finished"
    submit, *polls = fake_server.requests
    assert submit.method == "POST" and submit.path == "/jobs/"
    rid = request_id(invocation("svc"))
    assert [(p.method, p.path) for p in polls] == [("GET", f"/jobs/{rid}")] * 4
    assert "idempotency-key" not in polls[0].headers


async def test_webhook_callback_times_out_when_no_result_comes(
    fake_server: FakeHTTPServer,
) -> None:
    fake_server.queue(Reply(status=202))
    tools = registry("webhook-callback", fake_server.url, timeout="0.4s")
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert not result.ok and "timed out" in result.content
    assert len(fake_server.requests) >= 3  # the submission and some polls


async def test_webhook_callback_poll_error_ends_the_call(fake_server: FakeHTTPServer) -> None:
    fake_server.queue(Reply(status=202), Reply(status=410, body="expired job"))
    tools = registry("webhook-callback", fake_server.url)
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert not result.ok and result.content == "tool svc failed (HTTP 410)"
    assert "expired job" in result.error


async def test_webhook_callback_failure_result_is_reported(fake_server: FakeHTTPServer) -> None:
    failure = {"status": "error", "error": {"code": "ci_failed", "message": "3 tests failed"}}
    fake_server.queue(Reply(status=202), Reply(body=json.dumps(failure)))
    tools = registry("webhook-callback", fake_server.url)
    result = await tools.invoke(invocation("svc"))
    await tools.aclose()
    assert not result.ok and result.content == "tool svc failed (ci_failed): 3 tests failed"


async def test_the_retry_waits_follow_max_backoff_and_jitter(fake_server: FakeHTTPServer) -> None:
    """`backoff: 60s` capped by `max_backoff: 0.05s`, without jitter: the two retries wait
    0.05 s each and the call succeeds well within its 20 s; with the cap or the jitter ignored
    the first wait alone would be drawn up to minutes and the call would run out of time."""
    failure = {
        "status": "error",
        "error": {"code": "busy", "reason": "busy", "retryable": True, "message": "later"},
    }
    fake_server.queue(Reply(body=failure), Reply(body=failure), Reply(body=ok("done")))
    manifest = tool(
        "svc",
        type="external",
        endpoint=fake_server.url + "/execute",
        runtime={
            "timeout": "5s",
            "retry": {
                "max_attempts": 3,
                "backoff": "60s",
                "max_backoff": "0.05s",
                "jitter": "none",
            },
        },
    )
    tools = ToolRegistry({"svc": manifest}, options=ToolOptions())
    try:
        result = await tools.invoke(invocation("svc", timeout_s=20))
    finally:
        await tools.aclose()
    assert result.ok, result
    assert result.content == "done" and len(fake_server.requests) == 3
