"""Caps on open event streams and wait=true requests, over real HTTP (uvicorn on loopback) and
the real database: a tenant past its cap gets 429 in the envelope while another tenant still
streams, the process-wide cap holds across tenants, a refused POST makes no run, and a slot
comes back when its stream or wait ends."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.app import create_app
from api.deps import Guards
from core.config import Settings
from core.web.concurrency import RETRY_AFTER_S
from core.web.threaded import serve_in_thread
from tests.api.support import Headers, RecordingQueue

PER_TENANT = 2
TOTAL = 3


@pytest.fixture
def app(settings: Settings, engine: Engine, run_queue: RecordingQueue) -> FastAPI:
    """The app with PER_TENANT streams per tenant and TOTAL in all (no worker: runs stay
    queued, so their streams stay open)."""
    capped = settings.model_copy(
        update={"api_max_streams_per_tenant": PER_TENANT, "api_max_streams": TOTAL}
    )
    return create_app(capped, engine, run_queue=run_queue)


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _guards(app: FastAPI) -> Guards:
    guards: Guards = app.state.guards
    return guards


def _run(http: httpx.Client, auth: Headers) -> str:
    """A queued run in a session of its own (one active run per session)."""
    agent = http.post("/v1/agents", json={"name": f"a{time.monotonic_ns()}"}, headers=auth)
    assert agent.status_code == 201, agent.text
    chat = http.post(f"/v1/agents/{agent.json()['id']}/sessions", headers=auth).json()["id"]
    run = http.post(f"/v1/sessions/{chat}/messages", json={"content": "hi"}, headers=auth)
    assert run.status_code == 202, run.text
    ident: str = run.json()["id"]
    return ident


@contextlib.contextmanager
def _open_stream(http: httpx.Client, auth: Headers, run_id: str) -> Iterator[None]:
    """A stream of the run, held open for the block (its first event read)."""
    with http.stream("GET", f"/v1/runs/{run_id}/events", headers=auth) as response:
        assert response.status_code == 200
        lines = response.iter_lines()  # kept: a collected iterator would close the stream
        for line in lines:
            if line.startswith("event: run.queued"):
                break
        yield


def _assert_refused(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "rate_limited"
    assert fragment in body["error"]["message"]


def _wait_until(condition: Callable[[], Any], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_tenant_past_its_cap_gets_429_and_another_still_streams(
    app: FastAPI, http: httpx.Client, auth: Headers, other_auth: Headers
) -> None:
    runs = [_run(http, auth) for _ in range(PER_TENANT + 1)]
    theirs = _run(http, other_auth)
    with contextlib.ExitStack() as held:
        for run_id in runs[:PER_TENANT]:
            held.enter_context(_open_stream(http, auth, run_id))
        _assert_refused(http.get(f"/v1/runs/{runs[-1]}/events", headers=auth), "for this tenant")
        with _open_stream(http, other_auth, theirs):
            assert _guards(app).followers.open == PER_TENANT + 1
    # The client closed its streams: their slots came back, a new stream is admitted.
    _wait_until(lambda: _guards(app).followers.open == 0)
    with _open_stream(http, auth, runs[-1]):
        pass


def test_the_process_cap_holds_across_tenants(
    app: FastAPI, http: httpx.Client, auth: Headers, other_auth: Headers
) -> None:
    ours = [_run(http, auth) for _ in range(PER_TENANT)]
    theirs = [_run(http, other_auth) for _ in range(2)]
    with contextlib.ExitStack() as held:
        for run_id in ours:
            held.enter_context(_open_stream(http, auth, run_id))
        held.enter_context(_open_stream(http, other_auth, theirs[0]))
        refused = http.get(f"/v1/runs/{theirs[1]}/events", headers=other_auth)
        _assert_refused(refused, f"has {TOTAL} open event streams and waits, its most")


def test_a_refused_stream_or_wait_makes_no_run(
    app: FastAPI, http: httpx.Client, auth: Headers, run_queue: RecordingQueue
) -> None:
    runs = [_run(http, auth) for _ in range(PER_TENANT)]
    agent = http.post("/v1/agents", json={"name": "spare"}, headers=auth).json()["id"]
    chat = http.post(f"/v1/agents/{agent}/sessions", headers=auth).json()["id"]
    sent = len(run_queue.runs)
    with contextlib.ExitStack() as held:
        for run_id in runs:
            held.enter_context(_open_stream(http, auth, run_id))
        for mode in ({"stream": True}, {"wait": True, "timeout_s": 1}):
            body = {"content": "hi", **mode}
            refused = http.post(f"/v1/sessions/{chat}/messages", json=body, headers=auth)
            _assert_refused(refused, "for this tenant")
        # A plain POST is no follower: it is not capped.
        plain = http.post(f"/v1/sessions/{chat}/messages", json={"content": "hi"}, headers=auth)
        assert plain.status_code == 202, plain.text
    assert len(run_queue.runs) == sent + 1


def test_a_wait_holds_a_slot_until_it_answers(
    app: FastAPI, http: httpx.Client, auth: Headers
) -> None:
    agent = http.post("/v1/agents", json={"name": "w"}, headers=auth).json()["id"]
    chat = http.post(f"/v1/agents/{agent}/sessions", headers=auth).json()["id"]
    body = {"content": "hi", "wait": True, "timeout_s": 2.0}
    answers: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            http.post(f"/v1/sessions/{chat}/messages", json=body, headers=auth)
        )
    )
    waiter.start()
    try:
        _wait_until(lambda: _guards(app).followers.open_for(_tenant(http, auth)) == 1)
    finally:
        waiter.join(30)
    assert answers[0].status_code == 202, answers[0].text  # still queued when it ran out
    assert _guards(app).followers.open == 0


def _tenant(http: httpx.Client, auth: Headers) -> uuid.UUID:
    return uuid.UUID(http.get("/v1/me", headers=auth).json()["tenant_id"])


def test_a_refusal_is_held_and_its_retry_after_shortened(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, auth: Headers
) -> None:
    held = settings.model_copy(
        update={"api_max_streams_per_tenant": 1, "api_max_streams": 10, "api_refusal_hold_s": 2.0}
    )
    app = create_app(held, engine, run_queue=run_queue)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        runs = [_run(client, auth) for _ in range(2)]
        with _open_stream(client, auth, runs[0]):
            started = time.monotonic()
            refused = client.get(f"/v1/runs/{runs[1]}/events", headers=auth)
            waited = time.monotonic() - started
        assert refused.status_code == 429, refused.text
        assert waited >= 1.0  # held (half to all of the 2 s), not answered at once
        assert int(refused.headers["Retry-After"]) in (RETRY_AFTER_S - 2, RETRY_AFTER_S - 1)
        # the slot it was refused for comes back, and an admitted stream is never held
        with _open_stream(client, auth, runs[1]):
            pass
