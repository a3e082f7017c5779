"""The ledger's write appears in each task's trace (`ledger._spans`), with an in-memory
exporter and no database."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ledger import _spans
from ledger.plan import Incoming, incoming
from podium.core import tracing
from tests.ledger.conftest import task_events


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing.install_exporter(exporter)
    return exporter


def _produced(task_id: str) -> tuple[list[Incoming], int]:
    """A task's events as a step span of its own trace produced them, and that span's id."""
    with tracing.tracer().start_as_current_span(f"step of {task_id}") as step:
        trace = tuple((k, v.encode()) for k, v in tracing.trace_headers())
    items = [incoming(e, "events", 0, n, trace) for n, e in enumerate(task_events(task_id))]
    return items, step.get_span_context().span_id


def _trace_of(items: list[Incoming]) -> int:
    return int(dict(items[0].trace)["traceparent"].split(b"-")[1], 16)


def test_each_task_gets_a_ledger_append_span_in_its_own_trace(
    exporter: InMemorySpanExporter,
) -> None:
    a, a_span = _produced("t-trace-a")
    b, b_span = _produced("t-trace-b")
    untraced = [incoming(e) for e in task_events("t-untraced")]
    with _spans.storing(a + b + untraced):
        pass
    spans = exporter.get_finished_spans()
    appends = {
        (s.attributes or {})["podium.task_id"]: s for s in spans if s.name == "ledger.append"
    }
    assert set(appends) == {"t-trace-a", "t-trace-b"}
    for task_id, items, producer in (("t-trace-a", a, a_span), ("t-trace-b", b, b_span)):
        span = appends[task_id]
        assert span.context is not None and span.context.trace_id == _trace_of(items)
        assert span.parent is not None and span.parent.span_id == producer
        assert (span.attributes or {})["podium.ledger.events"] == len(items)
    (store,) = [s for s in spans if s.name == "ledger.store"]
    assert {link.context.trace_id for link in store.links} == {_trace_of(a), _trace_of(b)}
    assert (store.attributes or {})["podium.ledger.events"] == len(a) + len(b) + len(untraced)
    assert store.context is not None
    assert all(
        [link.context.span_id for link in s.links] == [store.context.span_id]
        for s in appends.values()
    )


def test_a_write_that_fails_marks_the_spans_failed(exporter: InMemorySpanExporter) -> None:
    items, _ = _produced("t-trace-fail")
    with pytest.raises(ConnectionResetError), _spans.storing(items):
        raise ConnectionResetError("reset by peer")
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and s.context.trace_id == _trace_of(items)
    ]
    (append,) = [s for s in spans if s.name == "ledger.append"]
    assert append.status.status_code is StatusCode.ERROR
