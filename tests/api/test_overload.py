"""A full connection pool is a 503 with Retry-After in the envelope, not a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from core.config import Settings
from core.db import create_db_engine
from core.web.errors import POOL_BUSY_RETRY_AFTER_S
from tests.api.support import RecordingQueue


@pytest.fixture
def small_pool(database_url: str, engine: Engine) -> Iterator[Engine]:
    """An engine of 1 + 1 connections that waits 1 s for one (`engine` migrated the database)."""
    small = create_db_engine(database_url, connect_timeout_s=1, pool_size=1)
    yield small
    small.dispose()


def test_an_exhausted_pool_is_503_with_retry_after(
    settings: Settings, small_pool: Engine, api_key: str
) -> None:
    app = create_app(settings, small_pool, run_queue=RecordingQueue())
    headers = {"Authorization": f"Bearer {api_key}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        held = [small_pool.connect() for _ in range(2)]
        try:
            for conn in held:
                conn.execute(text("SELECT 1"))
            response = client.get("/v1/agents", headers=headers)
        finally:
            for conn in held:
                conn.close()
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == str(POOL_BUSY_RETRY_AFTER_S)
        body = response.json()
        assert set(body) == {"error"}
        assert body["error"]["type"] == "unavailable"
        assert "busy" in body["error"]["message"]
        assert client.get("/v1/agents", headers=headers).status_code == 200  # drained
