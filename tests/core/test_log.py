"""Log lines: text by default; JSON lines that parse, with the bound ids (also added from
another thread of the same unit of work), the trace ids of the current span, and exceptions
as a string. The API's request and tenant ids: tests/api/test_request_ids.py."""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from core.log import JsonFormatter, annotate, bind, configure_logging, current_ids


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    loggers = [logging.getLogger(name) for name in names]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_text_is_the_default(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    with bind(run_id="r1"):
        logging.getLogger("agentmill.test").info("hello %s", "there")
    err = capsys.readouterr().err
    assert "INFO agentmill.test: hello there" in err
    assert not err.lstrip().startswith("{")


def test_json_lines_carry_the_bound_ids(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("agentmill.test")
    log.info("outside")
    with bind(request_id="req-1"):
        # A dependency running in a worker thread (in a copy of the context, as FastAPI runs
        # it) adds the tenant.
        copy = contextvars.copy_context()
        worker = threading.Thread(target=copy.run, args=(annotate,), kwargs={"tenant_id": "t-1"})
        worker.start()
        worker.join()
        with bind(run_id="run-1", ignored=None):
            log.warning("inside %d", 2)
        log.info("after")
    outside, inside, after = _lines(capsys.readouterr().err)
    assert set(outside) == {"timestamp", "level", "logger", "message"}
    assert outside["message"] == "outside"
    assert str(outside["timestamp"]).endswith("+00:00")
    assert inside == {
        "timestamp": inside["timestamp"],
        "level": "WARNING",
        "logger": "agentmill.test",
        "message": "inside 2",
        "request_id": "req-1",
        "run_id": "run-1",
        "tenant_id": "t-1",
    }
    assert "run_id" not in after
    assert after["tenant_id"] == "t-1"
    assert current_ids() == {}


def test_exceptions_are_one_string_field(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("agentmill.test").exception("it failed")
    (line,) = _lines(capsys.readouterr().err)
    assert line["message"] == "it failed"
    assert isinstance(line["exc"], str)
    assert "Traceback" in line["exc"]
    assert "ValueError: broken" in line["exc"]


def test_trace_ids_of_the_current_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("agentmill.test", logging.INFO, __file__, 1, "traced", None, None)
    with tracer.start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in json.loads(JsonFormatter().format(record))


def test_access_lines_lose_their_query_string(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # As a uvicorn started earlier in this process with its own (text) logging config leaves
    # them: JSON logging takes uvicorn's loggers back.
    for name in ("uvicorn", "uvicorn.access"):
        logging.getLogger(name).addHandler(logging.StreamHandler())
        logging.getLogger(name).propagate = False
    configure_logging("INFO", "json")
    access = logging.getLogger("uvicorn.access")
    path = "/v1/agents/a1/memories?query=my+secret+plans"
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200)
    (line,) = _lines(capsys.readouterr().err)
    assert line["message"] == '127.0.0.1:5000 - "GET /v1/agents/a1/memories HTTP/1.1" 200'
