"""GET /metrics over real HTTP on the real database: requests counted by route template and
status (never a raw path or id), timed, 413s of the size limit under their route, 429s
counted, open waits gauged while they last. The counters belong to the test process, so each
test compares before and after."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.web.rate_limit import ManualClock, RateLimiter
from core.web.threaded import serve_in_thread
from tests.api.support import Headers, RecordingQueue

BURST = 12

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def http(settings: Settings, engine: Engine, run_queue: RecordingQueue) -> Iterator[httpx.Client]:
    """The API with BURST requests per tenant that never refill (a clock that stands still)."""
    limiter = RateLimiter(60, BURST, clock=ManualClock())
    app = create_app(settings, engine, run_queue=run_queue, rate_limiter=limiter)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _scrape(http: httpx.Client) -> tuple[str, Samples]:
    response = http.get("/metrics")  # no key: like /healthz
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def _requests(samples: Samples, method: str, route: str, status: int) -> float:
    key = (("method", method), ("route", route), ("status", str(status)))
    return samples.get(("agentmill_api_requests_total", key), 0.0)


def _timed(samples: Samples, method: str, route: str) -> float:
    key = (("method", method), ("route", route))
    return samples.get(("agentmill_api_request_seconds_count", key), 0.0)


def test_requests_are_counted_by_route_template(http: httpx.Client, auth: Headers) -> None:
    _, before = _scrape(http)
    created = http.post("/v1/agents", json={"name": "counted"}, headers=auth)
    assert created.status_code == 201, created.text
    agent = created.json()["id"]
    unknown = str(uuid.uuid4())
    assert http.get(f"/v1/agents/{agent}", headers=auth).status_code == 200
    assert http.get(f"/v1/agents/{unknown}", headers=auth).status_code == 404
    assert http.get("/v1/agents/not-an-id", headers=auth).status_code == 404
    assert http.get("/nowhere/at-all").status_code == 404
    oversize = http.post("/v1/agents", json={"name": "x" * 10_000}, headers=auth)
    assert oversize.status_code == 413
    text, after = _scrape(http)

    template = "/v1/agents/{agent_id}"
    assert _requests(after, "GET", template, 200) - _requests(before, "GET", template, 200) == 1
    assert _requests(after, "GET", template, 404) - _requests(before, "GET", template, 404) == 2
    assert _timed(after, "GET", template) - _timed(before, "GET", template) == 3
    for status in (201, 413):  # the size limit answers before routing: its route still known
        gained = _requests(after, "POST", "/v1/agents", status)
        assert gained - _requests(before, "POST", "/v1/agents", status) == 1
    assert _requests(after, "GET", "unmatched", 404) > _requests(before, "GET", "unmatched", 404)
    for raw in (agent, unknown, "not-an-id", "nowhere"):
        assert raw not in text


def test_rate_limited_requests_are_counted(http: httpx.Client, auth: Headers) -> None:
    _, before = _scrape(http)
    statuses = [http.get("/v1/me", headers=auth).status_code for _ in range(BURST + 3)]
    assert statuses == [200] * BURST + [429] * 3
    _, after = _scrape(http)
    key = ("agentmill_api_rate_limited_total", (("route", "/v1/me"),))
    assert after.get(key, 0.0) - before.get(key, 0.0) == 3
    assert _requests(after, "GET", "/v1/me", 429) - _requests(before, "GET", "/v1/me", 429) == 3


def test_open_waits_are_gauged_while_they_last(http: httpx.Client, auth: Headers) -> None:
    gauge = ("agentmill_api_open_followers", ())
    agent = http.post("/v1/agents", json={"name": "waiter"}, headers=auth).json()["id"]
    chat = http.post(f"/v1/agents/{agent}/sessions", headers=auth).json()["id"]
    idle = _scrape(http)[1][gauge]
    body = {"content": "hi", "wait": True, "timeout_s": 3.0}  # no worker: it waits it out
    waited: list[int] = []
    waiter = threading.Thread(
        target=lambda: waited.append(
            http.post(f"/v1/sessions/{chat}/messages", json=body, headers=auth).status_code
        )
    )
    waiter.start()
    deadline = time.monotonic() + 3.0
    while _scrape(http)[1][gauge] != idle + 1:
        assert time.monotonic() < deadline, "the open wait never showed"
        time.sleep(0.05)
    waiter.join()
    assert waited == [202]
    assert _scrape(http)[1][gauge] == idle
