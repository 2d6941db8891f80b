"""Liveness and readiness, including a database that goes away and comes back."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agents.worker.heartbeat import Heartbeat, live_workers
from api.app import create_app
from core import migrate
from core.config import Settings
from core.db import create_db_engine
from core.embedded_pg import EmbeddedPostgres
from core.web.threaded import free_port


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_follows_the_database_without_restarting_the_api(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "home")
    url = pg.start()
    engine = create_db_engine(url, connect_timeout_s=1)
    migrate.upgrade(engine)
    app = create_app(Settings(home=tmp_path / "home", database_url=url), engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/readyz").status_code == 200
            pg.stop()
            time.sleep(2.1)  # past the report's cache
            down = client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["error"]["type"] == "unavailable"
            assert down.json()["components"]["database"]["status"] == "down"
            assert down.headers["retry-after"] == "5"
            assert pg.start() == url
            time.sleep(2.1)  # past the report's cache
            assert client.get("/readyz").status_code == 200
    finally:
        pg.stop()


def test_readyz_names_each_component(
    settings: Settings, engine: Engine, inference_url: str, redis_url: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    app = create_app(settings.model_copy(update={"inference_url": dead}), engine)
    with TestClient(app) as client:
        body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    parts = body["components"]
    assert parts["database"]["status"] == "ok"
    assert parts["broker"] == {"status": "ok", "kind": "database"}
    assert parts["inference"]["status"] == "down"
    assert parts["inference"]["error"] == "not reachable"  # no host or port in the answer
    assert parts["workers"] == {"status": "down", "count": 0, "error": "no worker beat in 15s"}

    heartbeat = Heartbeat(engine, concurrency=3)
    heartbeat.beat()
    update = {"inference_url": inference_url, "broker_url": redis_url}
    with TestClient(create_app(settings.model_copy(update=update), engine)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready", body
    parts = body["components"]
    assert parts["broker"]["kind"] == "redis"
    assert parts["inference"]["kind"] == "external"
    assert parts["workers"]["count"] == 1
    assert parts["workers"]["concurrency"] == 3
    heartbeat.stop()
    assert live_workers(engine, 60) == []
