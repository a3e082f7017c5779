"""The research pipeline end to end on the real stack: a hand-written JSON task completes."""

from __future__ import annotations

import json

import pytest

from tests.actors.conftest import RESEARCH_FILES, Runtime
from tests.helpers import wait_until
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration


async def test_hand_written_json_task_completes_in_order(runtime: Runtime) -> None:
    await runtime.start(RESEARCH_FILES)
    body = json.dumps(
        {
            "schema_version": 1,
            "task_id": "raw-json-1",
            "system": "research-pipeline",
            "input": "Analyze the current state of AI agent governance in enterprise.",
        }
    ).encode()
    await runtime.send_raw(b"raw-json-1", body)

    result = await runtime.result("raw-json-1", timeout=90)
    assert isinstance(result, TaskCompleted), result
    assert "AI agent governance" in result.output

    await wait_until(lambda: runtime.collector.of_type("raw-json-1", "task.completed"))
    events = runtime.collector.events["raw-json-1"]
    completed = [e.agent for e in events if e.type == "step.completed"]
    assert completed == ["researcher", "analyst", "writer"]
    types = [e.type for e in events]
    assert types[0] == "task.requested" and "task.started" in types
    assert any(e.type == "tool.called" and e.data["tool"] == "web-search" for e in events)
    models = [e for e in events if e.type == "model.called"]
    assert {e.agent for e in models} == {"researcher", "analyst", "writer"}
    assert all(e.data["input_tokens"] > 0 for e in models)
    # every event id is unique, the decisions' too: the policy service is their only writer;
    # one trace id spans the task
    assert len({e.event_id for e in events}) == len(events)
    decided = [e for e in events if e.type == "policy.decided"]
    assert decided and all(e.source == "policy" for e in decided)
    requests = [e.data["request_id"] for e in decided]
    assert len(set(requests)) == len(requests)
    assert len({e.trace_id for e in events if e.trace_id}) <= 1
