"""Bearer-key authentication on the API, through the real database: the 401s, the brief key
cache and how a revocation reaches it, and the failed-authentication limit per address."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.deps import Guards
from api.events_hub import EventHub
from core import keys
from core.config import Settings
from core.db import transaction
from core.tenants import create_key, ensure_tenant, revoke_key
from tests.api.support import RecordingQueue


def _assert_401(response_json: dict[str, dict[str, str]], fragment: str) -> None:
    assert response_json["error"]["type"] == "authentication_error"
    assert fragment in response_json["error"]["message"]


def test_valid_key_resolves_its_tenant(client: TestClient, api_key: str) -> None:
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_name"] == "acme"
    parsed = keys.parse(api_key)
    assert parsed is not None
    assert body["key_id"] == parsed.key_id


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (None, "missing API key"),
        ("Bearer", "Bearer <key>"),
        ("Basic dXNlcjpwYXNz", "Bearer <key>"),
        ("Bearer not-a-key", "malformed"),
        ("Bearer " + keys.generate().token, "invalid API key"),
    ],
)
def test_bad_credentials_get_401_envelope(
    client: TestClient, header: str | None, fragment: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    _assert_401(response.json(), fragment)


def _state(client: TestClient) -> Any:
    app: Any = client.app
    return app.state


def _hub(client: TestClient) -> EventHub:
    hub: EventHub = _state(client).events_hub
    return hub


def _guards(client: TestClient) -> Guards:
    guards: Guards = _state(client).guards
    return guards


def _wait_until(condition: Callable[[], Any], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_revoked_key_gets_401(client: TestClient, engine: Engine, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    _wait_until(lambda: _hub(client).connected)  # so the first answer is cached
    assert client.get("/v1/me", headers=headers).status_code == 200
    epoch = _hub(client).key_epoch
    with transaction(engine) as session:
        revoke_key(session, api_key)
    # The notification arrives within milliseconds, far inside the cache's 10 s.
    _wait_until(lambda: _hub(client).key_epoch != epoch, within_s=2.0)
    response = client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    _assert_401(response.json(), "revoked")


def test_a_known_key_is_looked_up_once_while_the_listener_is_up(
    client: TestClient, api_key: str
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    _wait_until(lambda: _hub(client).connected)
    assert client.get("/v1/me", headers=headers).status_code == 200
    before = _guards(client).auth.lookups
    answers = [client.get("/v1/me", headers=headers).status_code for _ in range(10)]
    assert answers == [200] * 10
    assert _guards(client).auth.lookups == before


def test_another_keys_revocation_only_costs_a_lookup(
    client: TestClient, engine: Engine, api_key: str
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "acme")
        spare = create_key(session, tenant_id, name="spare")
    _wait_until(lambda: _hub(client).connected)
    assert client.get("/v1/me", headers=headers).status_code == 200
    epoch = _hub(client).key_epoch
    with transaction(engine) as session:
        revoke_key(session, spare)
    _wait_until(lambda: _hub(client).key_epoch != epoch, within_s=2.0)
    before = _guards(client).auth.lookups
    assert client.get("/v1/me", headers=headers).status_code == 200
    assert _guards(client).auth.lookups == before + 1


def test_a_key_with_the_right_id_and_wrong_secret_is_refused(
    client: TestClient, api_key: str
) -> None:
    parsed = keys.parse(api_key)
    assert parsed is not None
    forged = f"am_{parsed.key_id}_{'B' * 43}"
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


FAILURES = 5


@pytest.fixture
def strict(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The app allowing FAILURES failed authentications per address and minute, with a tenant
    bucket that refills one request a minute, so a slow machine cannot refill it mid-test."""
    limited = settings.model_copy(
        update={
            "auth_failures_per_minute": FAILURES,
            "rate_limit_per_minute": 1,
            "rate_limit_burst": 200,
        }
    )
    with TestClient(create_app(limited, engine, run_queue=RecordingQueue())) as test_client:
        yield test_client


def _fake(i: int) -> dict[str, str]:
    return {"Authorization": f"Bearer am_{i:012x}_{'x' * 43}"}


def test_an_address_out_of_failures_gets_429_before_any_lookup(
    strict: TestClient, api_key: str, engine: Engine
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    assert strict.get("/v1/me", headers=headers).status_code == 200  # known from now on
    for i in range(FAILURES):
        assert strict.get("/v1/me", headers=_fake(i)).status_code == 401
    lookups = _guards(strict).auth.lookups
    refused = [strict.get("/v1/me", headers=_fake(100 + i)) for i in range(20)]
    assert {r.status_code for r in refused} == {429}
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["error"]["type"] == "rate_limited"
    assert "failed authentication" in refused[0].json()["error"]["message"]
    assert _guards(strict).auth.lookups == lookups  # none of them reached the database
    # Malformed or missing keys cost no lookup: still their own 401.
    assert strict.get("/v1/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    # The key that worked from this address still does (it is known: cached or looked up).
    assert strict.get("/v1/me", headers=headers).status_code == 200
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "acme")
        unseen = {"Authorization": f"Bearer {create_key(session, tenant_id)}"}
    assert strict.get("/v1/me", headers=unseen).status_code == 429  # until a token is back


def test_failed_authentication_does_not_spend_a_tenants_rate_limit(
    strict: TestClient, api_key: str
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    first = strict.get("/v1/me", headers=headers)
    for i in range(FAILURES + 3):
        strict.get("/v1/me", headers=_fake(i))
    again = strict.get("/v1/me", headers=headers)
    spent = int(first.headers["X-RateLimit-Remaining"]) - int(
        again.headers["X-RateLimit-Remaining"]
    )
    assert spent == 1
