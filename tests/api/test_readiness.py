"""The disk in /readyz, and a full disk refusing new runs and batches before anything is
written (the threshold setting stands in for a full disk)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, table

from api.app import create_app
from core.config import Settings
from core.disk import DiskMonitor
from tests.api.support import Headers, RecordingQueue

FULL = {"disk_min_free_mb": 10**9}
"""A threshold no disk meets: every check finds it full."""

TABLES = ("runs", "messages", "run_events", "batches", "batch_items")


@pytest.fixture
def full_client(
    settings: Settings, engine: Engine, run_queue: RecordingQueue
) -> Iterator[TestClient]:
    """The app over the test database with its disk 'full'."""
    app = create_app(settings.model_copy(update=FULL), engine, run_queue=run_queue)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())
            for name in TABLES
        }


def test_readyz_reports_the_free_space_of_the_database_disk(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200  # degraded (no inference, no worker), not unavailable
    disk = response.json()["components"]["disk"]
    assert disk["status"] == "ok"
    assert disk["free_mb"] > disk["min_free_mb"] == 512


def test_readyz_is_unavailable_below_the_threshold(full_client: TestClient) -> None:
    response = full_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["error"]["type"] == "unavailable"
    assert "MiB free" in body["error"]["message"]
    assert "AGENTMILL_DISK_MIN_FREE_MB" in body["error"]["message"]
    assert body["components"]["disk"]["status"] == "low"
    assert body["components"]["database"]["status"] == "ok"
    assert response.headers["retry-after"] == "60"


@pytest.mark.parametrize("options", [{}, {"wait": True}, {"stream": True}])
def test_a_full_disk_refuses_a_message_and_writes_nothing(
    full_client: TestClient,
    engine: Engine,
    auth: Headers,
    run_queue: RecordingQueue,
    options: dict[str, bool],
) -> None:
    agent = full_client.post("/v1/agents", json={"name": "helper"}, headers=auth).json()
    chat = full_client.post(f"/v1/agents/{agent['id']}/sessions", json={}, headers=auth).json()
    before = rows(engine)

    response = full_client.post(
        f"/v1/sessions/{chat['id']}/messages", json={"content": "hi", **options}, headers=auth
    )

    assert response.status_code == 507
    error = response.json()["error"]
    assert error["type"] == "insufficient_storage"
    assert "almost full" in error["message"]
    assert rows(engine) == before == dict.fromkeys(TABLES, 0)
    assert run_queue.runs == []


def test_a_full_disk_refuses_a_batch_and_writes_nothing(
    full_client: TestClient, engine: Engine, auth: Headers, run_queue: RecordingQueue
) -> None:
    agent = full_client.post("/v1/agents", json={"name": "helper"}, headers=auth).json()
    body = {"agent_id": agent["id"], "items": [{"input": "one"}, {"input": "two"}]}

    response = full_client.post("/v1/batches", json=body, headers=auth)

    assert response.status_code == 507
    assert response.json()["error"]["type"] == "insufficient_storage"
    assert rows(engine) == dict.fromkeys(TABLES, 0)
    assert run_queue.runs == []


def test_strangers_learn_nothing_of_the_disk(full_client: TestClient) -> None:
    response = full_client.post("/v1/batches", json={}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 401


def test_work_is_accepted_again_once_there_is_room(
    full_client: TestClient, settings: Settings, engine: Engine, auth: Headers
) -> None:
    agent = full_client.post("/v1/agents", json={"name": "helper"}, headers=auth).json()
    chat = full_client.post(f"/v1/agents/{agent['id']}/sessions", json={}, headers=auth).json()
    url = f"/v1/sessions/{chat['id']}/messages"
    assert full_client.post(url, json={"content": "hi"}, headers=auth).status_code == 507

    readiness = full_client.app.state.readiness  # type: ignore[attr-defined]
    readiness.disk = DiskMonitor(engine, settings)  # space freed: the next measurement sees it

    assert full_client.post(url, json={"content": "hi"}, headers=auth).status_code == 202
    assert rows(engine)["runs"] == 1
