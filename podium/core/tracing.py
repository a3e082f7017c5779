"""OpenTelemetry tracing: one trace per task across every hop.

The W3C trace context travels in Kafka headers (`traceparent`/`tracestate`). Services wrap their
handlers with `traced_handler` (middleware: the span of a step opens around the handler, with the
parent taken from the record's headers) and their calls with `span`; code that produces a message
asks `trace_headers()` for the current context.

Configuration comes from the standard `OTEL_*` variables: `OTEL_TRACES_EXPORTER` (`otlp`,
`console` or `none`) and/or `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
(OTLP over HTTP). With none of them set, tracing is off (spans are no-ops, ids are still
propagated when a caller sent them). Tests install an exporter with `install_exporter`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACER_NAME = "podium"
_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None

P = ParamSpec("P")
R = TypeVar("R")
AttributeValue = str | int | float | bool


def _sdk_provider(service_name: str) -> TracerProvider:
    """The process's SDK provider, made and registered once."""
    global _provider
    if _provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _provider = current
        else:
            _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
            trace.set_tracer_provider(_provider)
    return _provider


def configure_from_env(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the exporters the `OTEL_*` variables ask for; return whether tracing is on."""
    environ = os.environ if env is None else env
    wanted = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not wanted and endpoint:
        wanted = ["otlp"]
    if not wanted or wanted == ["none"] or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    provider = _sdk_provider(environ.get("OTEL_SERVICE_NAME", service_name))
    for name in wanted:
        if name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name != "none":
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r}; use otlp, console or none"
            )
    log.info("tracing on: %s", ", ".join(wanted))
    return True


def install_exporter(exporter: SpanExporter, service_name: str = "podium") -> None:
    """Send every span of this process to `exporter`, synchronously (for tests)."""
    _sdk_provider(service_name).add_span_processor(SimpleSpanProcessor(exporter))


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    carrier = {
        key: value.decode(errors="replace")
        for key, value in headers or ()
        if key in ("traceparent", "tracestate") and value is not None
    }
    return _propagator.extract(carrier)


def trace_headers() -> list[tuple[str, str]]:
    """The current trace context as W3C headers (empty when there is none)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return list(carrier.items())


def current_ids() -> tuple[str, str]:
    """(trace_id, span_id) of the current span, as hex; empty strings when there is none."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return "", ""
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


@asynccontextmanager
async def span(
    name: str,
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue | None] | None = None,
) -> AsyncIterator[Span]:
    """A span around a block; records the exception and marks the span as failed."""
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=attrs, record_exception=True
    ) as current:
        yield current


def annotate(**attributes: AttributeValue | None) -> None:
    """Set attributes on the current span (tokens, cost, decision, ...)."""
    current = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key.replace("__", "."), value)


def mark_error(message: str) -> None:
    trace.get_current_span().set_status(Status(StatusCode.ERROR, message))


def traced_handler(
    name: Callable[..., str],
    headers_of: Callable[..., Sequence[tuple[str, bytes]] | None],
    attributes: Callable[..., Mapping[str, AttributeValue | None]] = lambda *a: {},
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Middleware: run the handler inside a CONSUMER span whose parent comes from the record."""

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        async def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            parent = context_from_headers(headers_of(*args, **kwargs))
            async with span(
                name(*args, **kwargs),
                parent=parent,
                kind=SpanKind.CONSUMER,
                attributes=attributes(*args, **kwargs),
            ):
                return await handler(*args, **kwargs)

        wrapped.__name__ = getattr(handler, "__name__", "handler")
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return decorate
