"""Request ids: the caller's X-Request-ID (when it is a plain token) or a new one, echoed in
the response and carried, with the authenticated tenant, by the request's JSON log lines, an
unhandled error's too; the presented API key appears in no line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.deps import PrincipalDep
from core.config import Settings
from core.log import JsonFormatter
from tests.api.support import Headers, RecordingQueue

log = logging.getLogger("tests.api.request_ids")


@pytest.fixture
def app(settings: Settings, engine: Engine, run_queue: RecordingQueue) -> FastAPI:
    """The API plus two routes of this test: one that logs for its tenant, one that fails."""
    app = create_app(settings, engine, run_queue=run_queue)

    @app.get("/v1/test-log")
    def logs(principal: PrincipalDep) -> dict[str, str]:
        log.info("handled for %s", principal.tenant_name)
        return {"tenant_id": str(principal.tenant_id)}

    @app.get("/test-fail")
    def fails() -> None:
        raise RuntimeError("boom")

    return app


class Captured:
    """JSON lines logged by this test's routes and by the error handler."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        """Everything logged so far."""
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Each line, parsed."""
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(JsonFormatter())
    loggers = [log, logging.getLogger("core.web.errors")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield capture
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_callers_id_is_echoed_and_logged_with_the_tenant(
    app: FastAPI, auth: Headers, api_key: str, captured: Captured
) -> None:
    with TestClient(app) as client:
        response = client.get("/v1/test-log", headers={**auth, "X-Request-ID": "abc-123"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "abc-123"
    assert api_key not in captured.text
    assert "Bearer" not in captured.text
    (line,) = captured.lines()
    assert line["message"] == "handled for acme"
    assert line["request_id"] == "abc-123"
    assert line["tenant_id"] == response.json()["tenant_id"]


def test_a_new_id_when_none_or_a_bad_one_is_presented(app: FastAPI, auth: Headers) -> None:
    with TestClient(app) as client:
        plain = client.get("/healthz")
        bad = client.get("/healthz", headers={"X-Request-ID": "two words"})
        again = client.get("/healthz")
    for response in (plain, bad, again):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert plain.headers["X-Request-ID"] != again.headers["X-Request-ID"]


def test_an_unhandled_error_is_logged_with_its_request_id(app: FastAPI, captured: Captured) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/test-fail", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert "boom" not in response.text
    (line,) = [line for line in captured.lines() if line["logger"] == "core.web.errors"]
    assert line["request_id"] == "boom-1"
    assert "RuntimeError: boom" in line["exc"]
