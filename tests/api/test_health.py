"""Liveness and readiness, including a database that goes away and comes back."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from core import migrate
from core.config import Settings
from core.db import create_db_engine
from core.embedded_pg import EmbeddedPostgres


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
            down = client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["error"]["type"] == "unavailable"
            assert pg.start() == url
            assert client.get("/readyz").status_code == 200
    finally:
        pg.stop()
