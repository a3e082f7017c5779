"""Orloj's Tool Contract v1: the `ToolExecutionRequest` envelope that `external`,
`webhook-callback` and `grpc` tools receive, and the `ToolExecutionResponse` they answer
(`runtime/tool_contract.go` in Orloj v0.3).

The request carries the model's arguments as the JSON text `input_raw`, the task, the agent, the
tool (name, operation `invoke`, risk level), the runtime (mode, timeout, attempts), the auth
profile and Secret name (never its value), the trace ids and the attempt number. Its
`request_id` is derived from the call's idempotency key, so every attempt and every re-run of the
same call has the same id: a tool can deduplicate on it.

A response's `status` is `ok` (or empty), `error` or `denied`; `output.result` (a string) goes to
the model; a failure carries `error: {code, reason, retryable, message}`, and `retryable` decides
whether the call is attempted again."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from actors.tools._attempts import RetryableToolFailure, ToolFailure
from actors.tools.base import ToolInvocation
from manifests.models import Tool
from podium.core import tracing

CONTRACT_VERSION = "v1"
CONTRACT_HEADER = "X-Tool-Contract-Version"
MAX_MESSAGE_CHARS = 300
"""What the model sees of a tool's own error message."""
PENDING = "pending"
"""A webhook-callback poll's answer while the result is not ready (besides 202 and 204)."""


def request_id(invocation: ToolInvocation) -> str:
    """The call's request id: the same for every attempt and re-run, safe in a URL path."""
    digest = hashlib.sha256(invocation.idempotency_key.encode()).hexdigest()[:32]
    return f"podium-{digest}"


def build_request(
    manifest: Tool, invocation: ToolInvocation, *, attempt: int, timeout_s: float
) -> dict[str, Any]:
    """The `ToolExecutionRequest` of one attempt, without Orloj's empty (omitempty) fields."""
    spec = manifest.spec
    trace_id, span_id = tracing.current_ids()
    envelope: dict[str, Any] = {
        "tool_contract_version": CONTRACT_VERSION,
        "request_id": request_id(invocation),
        "task_id": invocation.task_id,
        "namespace": manifest.metadata.namespace or "",
        "agent": invocation.agent,
        "tool": {"name": invocation.tool, "operation": "invoke", "risk_level": spec.risk_level},
        "input_raw": json.dumps(invocation.arguments, separators=(",", ":")),
        "runtime": {
            "mode": spec.type,
            "timeout_ms": int(timeout_s * 1000),
            "max_attempts": spec.runtime.retry.max_attempts,
        },
        "auth": (
            {"profile": spec.auth.profile, "secret_ref": spec.auth.secret_ref} if spec.auth else {}
        ),
        "trace": {"trace_id": trace_id, "span_id": span_id} if trace_id else {},
        "attempt": attempt,
    }
    return {key: value for key, value in envelope.items() if value not in ("", {}, None)}


def parse_response(tool: str, body: bytes | str | dict[str, Any]) -> str:
    """The result of a `ToolExecutionResponse`, or raises `ToolFailure` /
    `RetryableToolFailure` with the tool's own code and reason."""
    response = _decode(tool, body)
    status = str(response.get("status") or "ok").strip().lower()
    if status == "ok":
        output = response.get("output") or {}
        result = output.get("result", "") if isinstance(output, dict) else None
        if not isinstance(result, str):
            raise RetryableToolFailure(
                f"tool {tool} returned an invalid contract response",
                "contract: output.result must be a string",
            )
        return result.strip()
    raise failure(tool, status, response.get("error"))


def is_pending(body: bytes) -> bool:
    """A webhook-callback poll answer that says the result is not ready yet."""
    try:
        response = json.loads(body)
    except ValueError:
        return False
    return isinstance(response, dict) and str(response.get("status", "")).lower() == PENDING


def failure(tool: str, status: str, error: object) -> ToolFailure | RetryableToolFailure:
    """A tool's `error` (or `denied`) answer as the failure of the attempt."""
    if status not in ("error", "denied"):
        return ToolFailure(
            f"tool {tool} returned an invalid contract response",
            f"contract: unknown status {status[:40]!r} (expected ok, error or denied)",
        )
    if not isinstance(error, dict):
        return ToolFailure(
            f"tool {tool} failed", f"contract: status {status} without an error envelope"
        )
    code = str(error.get("code") or ("permission_denied" if status == "denied" else "error"))
    reason = str(error.get("reason") or "")
    message = str(error.get("message") or reason or code)[:MAX_MESSAGE_CHARS]
    detail = f"{status}: {code}" + (f" ({reason})" if reason else "") + f": {message}"
    safe = (
        f"the tool {tool} denied the call ({code}): {message}"
        if status == "denied"
        else f"tool {tool} failed ({code}): {message}"
    )
    if status == "error" and error.get("retryable") is True:
        return RetryableToolFailure(safe, detail)
    return ToolFailure(safe, detail)


def _decode(tool: str, body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        response = json.loads(body)
    except ValueError as exc:
        raise RetryableToolFailure(
            f"tool {tool} returned an invalid contract response",
            f"contract: the response is not JSON ({exc})",
        ) from exc
    if not isinstance(response, dict):
        raise RetryableToolFailure(
            f"tool {tool} returned an invalid contract response",
            "contract: the response is not a JSON object",
        )
    return response
