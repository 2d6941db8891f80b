"""OpenTelemetry tracing of every process: off by default; an OTLP/HTTP endpoint
(AGENTMILL_OTEL_EXPORTER_OTLP_ENDPOINT, or the standard OTEL_EXPORTER_OTLP_ENDPOINT /
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables, which the exporter reads itself) turns it on.

`configure_tracing` installs the process's tracer provider once (batching exporter; spans are
flushed at exit). The standard instrumentations cover FastAPI requests, httpx calls and
Celery (the trace context travels in the task's headers, so a run's trace goes from the REST
request through the queue to the worker); SQL statements get a span each from the engine's
events; agentmill's own spans (a run, its steps, model calls, tool calls, memory searches:
agents/telemetry.py) nest under them. With tracing off every span is a no-op.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import Engine, event

from core.config import Settings

log = logging.getLogger(__name__)

_STANDARD_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_lock = threading.Lock()
_provider: TracerProvider | None = None
_instrumented: set[str] = set()
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
MAX_STATEMENT_CHARS = 2000


def tracing_enabled(settings: Settings) -> bool:
    """Whether an endpoint to send traces to is configured."""
    return bool(settings.otel_exporter_otlp_endpoint) or any(
        os.environ.get(name) for name in _STANDARD_VARIABLES
    )


def configure_tracing(settings: Settings, component: str) -> bool:
    """Install this process's tracer provider (`component`: api, worker, inference) unless
    tracing is off or a provider is already installed; returns whether tracing is on."""
    global _provider
    if not tracing_enabled(settings):
        return False
    with _lock:
        if _provider is not None:
            return True
        resource = Resource.create(
            {
                "service.name": settings.otel_service_name,
                "service.namespace": "agentmill",
                "agentmill.component": component,
            }
        )
        provider = TracerProvider(resource=resource)
        endpoint = settings.otel_exporter_otlp_endpoint
        exporter = (
            OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
            if endpoint
            else OTLPSpanExporter()  # the standard OTEL_* variables
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _provider = provider
    log.info("tracing on: spans go to %s", endpoint or "the OTEL_EXPORTER_OTLP endpoint")
    _instrument_libraries()
    return True


def flush_traces(timeout_s: float = 5.0) -> None:
    """Send the spans still batched (a worker's shutdown, a test)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_s * 1000))


def _instrument_libraries() -> None:
    """Celery (both sides of the queue) and httpx, once per process."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    for name, instrumentor in (
        ("celery", CeleryInstrumentor()),  # type: ignore[no-untyped-call]
        ("httpx", HTTPXClientInstrumentor()),
    ):
        if name not in _instrumented:
            instrumentor.instrument()
            _instrumented.add(name)


def instrument_app(app: Any) -> None:
    """Trace the API's requests (when tracing is on); health probes and /metrics are left
    out, they would drown the traces."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_provider, excluded_urls="healthz,readyz,metrics"
    )


def instrument_engine(engine: Engine) -> None:
    """Trace a database engine's statements (when tracing is on): one client span per
    statement, named by its operation (`SELECT agentmill`), with the statement's text (its
    parameters are never recorded). SQLAlchemy's engine events, not the contrib
    instrumentation, whose declared range ends before SQLAlchemy 2.1."""
    if _provider is None or engine in _engines:
        return
    _engines.add(engine)
    tracer = trace.get_tracer("agentmill.db")
    database = engine.url.database or ""

    @event.listens_for(engine, "before_cursor_execute")
    def _start(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        words = statement.split(None, 1)
        operation = words[0].upper() if words else "SQL"
        context._agentmill_span = tracer.start_span(
            f"{operation} {database}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.namespace": database,
                "db.operation.name": operation,
                "db.query.text": statement[:MAX_STATEMENT_CHARS],
            },
        )

    @event.listens_for(engine, "after_cursor_execute")
    def _end(
        _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        span = getattr(context, "_agentmill_span", None)
        if span is not None:
            span.end()

    @event.listens_for(engine, "handle_error")
    def _failed(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, "_agentmill_span", None)
        if span is not None:
            span.set_status(
                Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
            )
            span.end()
