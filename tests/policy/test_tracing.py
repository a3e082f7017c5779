"""The policy hop in the requester's trace: `traceparent` on the request, a `policy.decide` span."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from podium.core import tracing
from policy_service.client import is_allowed
from tests.helpers import wait_until
from tests.policy.conftest import PolicyHarness
from topics.messages import Action

pytestmark = pytest.mark.integration


async def test_the_decision_is_a_child_span_of_the_requesters(harness: PolicyHarness) -> None:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter)
    await harness.start_service()
    authorizer = await harness.authorizer()
    task_id = f"task-{uuid.uuid4().hex[:10]}"

    async with tracing.span("requester") as requester:
        decision = await authorizer.authorize(
            task_id=task_id,
            system="report",
            agent="researcher",
            step_id="s1",
            action=Action.MODEL_CALL,
            model="mock-small",
            endpoint="local",
            estimated_tokens=100,
        )
    assert is_allowed(decision), decision
    parent = requester.get_span_context()

    def decide_spans() -> list[ReadableSpan]:
        return [
            s
            for s in exporter.get_finished_spans()
            if s.name == "policy.decide" and (s.attributes or {}).get("podium.task_id") == task_id
        ]

    spans = await wait_until(decide_spans, timeout=10, message="no policy.decide span")
    assert len(spans) == 1
    decide = spans[0]
    assert decide.context is not None and decide.parent is not None
    assert decide.context.trace_id == parent.trace_id
    assert decide.parent.span_id == parent.span_id
    assert decide.parent.is_remote  # it came over Kafka, in the request's headers
    attributes = decide.attributes or {}
    assert attributes.get("podium.decision") == "allow"
    assert attributes.get("podium.request_id") == decision.request_id
