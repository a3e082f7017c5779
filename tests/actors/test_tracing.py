"""One OpenTelemetry trace per task across every hop, exported to an in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from podium.core import tracing
from tests.actors.conftest import RESEARCH_FILES, Runtime
from tests.helpers import wait_until
from topics.messages import TaskCompleted

pytestmark = pytest.mark.integration


async def test_demo_task_is_one_trace_with_spans_for_every_step_and_call(
    runtime: Runtime,
) -> None:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter)
    await runtime.start(RESEARCH_FILES)
    task_id = await runtime.submit("research-pipeline", "AI agent governance?")
    assert isinstance(await runtime.result(task_id, timeout=90), TaskCompleted)
    await wait_until(lambda: runtime.collector.of_type(task_id, "task.completed"))

    def spans_of_task() -> list[object]:
        return [
            s
            for s in exporter.get_finished_spans()
            if (s.attributes or {}).get("podium.task_id") == task_id
        ]

    await wait_until(lambda: len(spans_of_task()) >= 4)  # dispatch + 3 steps
    roots = {s.context.trace_id for s in spans_of_task()}  # type: ignore[attr-defined]
    assert len(roots) == 1
    trace_id = roots.pop()
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    names = [s.name for s in spans]
    assert names.count("dispatch") == 1
    assert sorted(n for n in names if n.startswith("step ")) == [
        "step analyst",
        "step researcher",
        "step writer",
    ]
    models = [s for s in spans if s.name.startswith("model ")]
    assert len(models) == 4  # researcher twice (tool call, then answer), analyst, writer
    assert all((s.attributes or {}).get("gen_ai.usage.input_tokens", 0) > 0 for s in models)
    assert any("podium.cost_usd" in (s.attributes or {}) for s in models)
    assert [s.name for s in spans if s.name.startswith("tool ")] == ["tool web-search"]
    policy = [s for s in spans if s.name.startswith("policy ")]
    assert len(policy) == 5 and all(
        (s.attributes or {}).get("podium.decision") == "allow" for s in policy
    )
    # every event of the task carries the same trace id
    hex_id = format(trace_id, "032x")
    events = runtime.collector.events[task_id]
    assert {e.trace_id for e in events if e.type != "policy.decided"} == {hex_id}
