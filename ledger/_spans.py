"""The ledger's write in each task's trace.

A batch holds events of many tasks, each from its own trace. Its write is one `ledger.store`
span, linked to the span that produced each task's first event in the batch; within each task's
trace, a `ledger.append` span (a child of that producing span, linked back to `ledger.store`)
covers the same write, so the task's trace shows when its events reached the ledger. The trace
context is the one the record carried in its `traceparent`/`tracestate` headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, Status, StatusCode

from ledger.plan import Incoming
from podium.core import tracing

MAX_LINKS = 128
"""Links on one `ledger.store` span (the SDK's default limit); every task still gets its
`ledger.append` span."""


class StoreSpans:
    """The spans of one batch's write."""

    def __init__(self, batch: Span, appends: list[Span]) -> None:
        self.batch = batch
        self.appends = appends

    def fail(self, message: str) -> None:
        for span in (self.batch, *self.appends):
            span.set_status(Status(StatusCode.ERROR, message))


def _task_contexts(items: Iterable[Incoming]) -> tuple[dict[str, Context], dict[str, int]]:
    """Each task's trace context (that of its first event that carries one), and its events."""
    contexts: dict[str, Context] = {}
    counts: dict[str, int] = {}
    for item in items:
        task_id = item.event.task_id
        counts[task_id] = counts.get(task_id, 0) + 1
        if item.trace and task_id not in contexts:
            context = tracing.context_from_headers(item.trace)
            if trace.get_current_span(context).get_span_context().is_valid:
                contexts[task_id] = context
    return contexts, counts


@contextmanager
def storing(items: list[Incoming]) -> Iterator[StoreSpans]:
    """The `ledger.store` span of a batch and the `ledger.append` spans of its tasks, ended
    when the block ends (failed when it raises)."""
    tracer = tracing.tracer()
    contexts, counts = _task_contexts(items)
    links = [
        Link(trace.get_current_span(context).get_span_context())
        for context in list(contexts.values())[:MAX_LINKS]
    ]
    with tracer.start_as_current_span(
        "ledger.store",
        links=links,
        attributes={"podium.ledger.events": len(items), "podium.ledger.tasks": len(counts)},
        record_exception=True,
    ) as batch:
        appends: list[Span] = []
        if batch.is_recording():
            batch_link = [Link(batch.get_span_context())]
            appends = [
                tracer.start_span(
                    "ledger.append",
                    context=context,
                    links=batch_link,
                    attributes={
                        "podium.task_id": task_id,
                        "podium.ledger.events": counts[task_id],
                    },
                )
                for task_id, context in contexts.items()
            ]
        spans = StoreSpans(batch, appends)
        try:
            yield spans
        except BaseException as exc:
            for span in appends:
                span.record_exception(exc)
            spans.fail(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            for span in appends:
                span.end()
