"""The per-tenant rate limit over REST: 429 with Retry-After and the error envelope, one bucket
per tenant, streams counted once, probes and failed authentication not counted, 0 disables.
A manual clock makes every figure exact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from agentmill.errors import RateLimitError, error_for
from agentmill.retry import RetryPolicy
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.runs.events import MessageDelta
from api.app import create_app
from core.config import Settings
from core.db import transaction
from core.tenants import create_key, ensure_tenant
from core.web.rate_limit import ManualClock, RateLimiter
from tests.api import support
from tests.api.support import Headers, RecordingQueue

BURST = 3

Response = Any
"""What the TestClient answers (Starlette types it with a module mypy does not see)."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, clock: ManualClock
) -> Iterator[TestClient]:
    """The app with a bucket of BURST requests per tenant, refilled one a second."""
    limiter = RateLimiter(60, BURST, clock=clock)
    app = create_app(settings, engine, run_queue=run_queue, rate_limiter=limiter)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _spend(client: TestClient, auth: Headers, n: int) -> list[Response]:
    return [client.get("/v1/me", headers=auth) for _ in range(n)]


def _assert_limited(response: Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "rate_limited"
    assert "60 requests per minute" in body["error"]["message"]


def test_over_the_limit_is_429_with_retry_after(client: TestClient, auth: Headers) -> None:
    answers = _spend(client, auth, BURST)
    assert [r.status_code for r in answers] == [200] * BURST
    assert [r.headers["X-RateLimit-Limit"] for r in answers] == [str(BURST)] * BURST
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
    _assert_limited(client.get("/v1/me", headers=auth), retry_after=1)


def test_a_token_comes_back_after_retry_after(
    client: TestClient, auth: Headers, clock: ManualClock
) -> None:
    _spend(client, auth, BURST)
    _assert_limited(client.get("/v1/me", headers=auth), retry_after=1)
    clock.advance(0.5)
    _assert_limited(client.get("/v1/me", headers=auth), retry_after=1)
    clock.advance(0.5)
    assert client.get("/v1/me", headers=auth).status_code == 200
    _assert_limited(client.get("/v1/me", headers=auth), retry_after=1)


def test_a_refused_request_does_nothing(
    client: TestClient, auth: Headers, clock: ManualClock
) -> None:
    _spend(client, auth, BURST)
    _assert_limited(client.post("/v1/agents", json={"name": "x"}, headers=auth), retry_after=1)
    clock.advance(1)
    assert client.get("/v1/agents", headers=auth).json()["data"] == []


def test_tenants_have_separate_limits(
    client: TestClient, auth: Headers, other_auth: Headers
) -> None:
    _spend(client, auth, BURST)
    _assert_limited(client.get("/v1/me", headers=auth), retry_after=1)
    answers = _spend(client, other_auth, BURST)
    assert [r.status_code for r in answers] == [200] * BURST
    _assert_limited(client.get("/v1/me", headers=other_auth), retry_after=1)


def test_keys_of_one_tenant_share_its_limit(
    client: TestClient, auth: Headers, engine: Engine
) -> None:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "acme")
        second = {"Authorization": f"Bearer {create_key(session, tenant_id, name='second')}"}
    _spend(client, auth, BURST)
    _assert_limited(client.get("/v1/me", headers=second), retry_after=1)


def test_probes_and_failed_authentication_are_not_counted(
    client: TestClient, auth: Headers
) -> None:
    _spend(client, auth, BURST)
    _assert_limited(client.get("/v1/me", headers=auth), retry_after=1)
    health = client.get("/healthz")
    assert health.status_code == 200
    assert "X-RateLimit-Remaining" not in health.headers
    bad = client.get("/v1/me", headers={"Authorization": "Bearer am_000000000000_nope"})
    assert bad.status_code == 401
    assert client.get("/v1/me").status_code == 401


def test_a_stream_counts_as_one_request(
    client: TestClient, auth: Headers, engine: Engine, clock: ManualClock
) -> None:
    agent = client.post("/v1/agents", json={"name": "a"}, headers=auth).json()["id"]
    chat = client.post(f"/v1/agents/{agent}/sessions", headers=auth).json()["id"]
    clock.advance(60)  # a full bucket again
    run = client.post(f"/v1/sessions/{chat}/messages", json={"content": "hi"}, headers=auth)
    support.start(engine, run.json()["id"])
    for i in range(5):
        support.event(engine, run.json()["id"], MessageDelta(step=1, attempt=1, delta=str(i)))
    support.finish(engine, run.json()["id"])
    events = client.get(f"/v1/runs/{run.json()['id']}/events", headers=auth)
    assert events.status_code == 200
    assert events.text.count("event: message.delta") == 5
    assert events.headers["X-RateLimit-Remaining"] == "1"  # the POST and the stream


def test_the_sdk_reads_the_429(client: TestClient, auth: Headers) -> None:
    _spend(client, auth, BURST)
    answer = client.get("/v1/me", headers=auth)
    received = httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
    error = error_for(received)
    assert isinstance(error, RateLimitError)
    assert (error.type, error.retry_after) == ("rate_limited", 1.0)
    assert RetryPolicy().after_failure(0, error, idempotent=False) == 1.0


def test_the_settings_build_the_limit(settings: Settings, engine: Engine, auth: Headers) -> None:
    app = create_app(settings, engine, run_queue=RecordingQueue())
    with TestClient(app) as client:
        response = client.get("/v1/me", headers=auth)
    assert response.headers["X-RateLimit-Limit"] == str(settings.rate_limit_per_minute)
    assert settings.rate_limit_per_minute == 1200  # the default: normal use never meets it


def test_zero_disables_the_limit(settings: Settings, engine: Engine, auth: Headers) -> None:
    off = settings.model_copy(update={"rate_limit_per_minute": 0, "rate_limit_burst": 1})
    app = create_app(off, engine, run_queue=RecordingQueue())
    with TestClient(app) as client:
        answers = [client.get("/v1/me", headers=auth) for _ in range(20)]
    assert [r.status_code for r in answers] == [200] * 20
    assert "X-RateLimit-Limit" not in answers[-1].headers


def test_with_redis_two_api_processes_share_one_limit(
    settings: Settings, engine: Engine, auth: Headers, other_auth: Headers, redis_url: str
) -> None:
    shared = settings.model_copy(
        update={
            "rate_limit_per_minute": 1,
            "rate_limit_burst": 3,
            "rate_limit_redis_url": redis_url,
        }
    )
    first_app = create_app(shared, engine, run_queue=RecordingQueue())
    second_app = create_app(shared, engine, run_queue=RecordingQueue())
    with TestClient(first_app) as first, TestClient(second_app) as second:
        answers = [c.get("/v1/me", headers=auth) for c in (first, second, first)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
        refused = second.get("/v1/me", headers=auth)
        assert refused.status_code == 429
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        assert first.get("/v1/me", headers=other_auth).status_code == 200  # its own bucket


def test_a_redis_broker_shares_the_limit_by_default(settings: Settings, redis_url: str) -> None:
    assert settings.shared_rate_limit_url is None  # embedded: each process its own bucket
    assert settings.model_copy(update={"broker_url": redis_url}).shared_rate_limit_url == redis_url
