"""Shared fixtures: one real embedded Postgres (with pgvector) for the session, a fresh
database per test, an app wired to it, the real embedding model (loaded once), and the API
served over HTTP (alone, or with a real worker) for the SDK's and the CLI's live tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from agents.worker.queue import RunQueue, make_celery
from api.app import create_app
from core import migrate
from core.config import Settings
from core.db import create_db_engine, transaction
from core.embedded_pg import EmbeddedPostgres
from core.tenants import create_key, ensure_tenant
from core.web.threaded import serve_in_thread
from inference.embedder import SentenceTransformerEmbedder

if TYPE_CHECKING:  # imported by pytest_plugins below; importing it here first defeats that
    from tests.services import WorkerFactory

pytest_plugins = ["tests.services"]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a session-wide embedded server (its `agentmill` database)."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg-home"))
    url = pg.start()
    yield url
    pg.stop()


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the bundled package, loaded once."""
    real = SentenceTransformerEmbedder()
    real.embed(["warm-up"])
    real.embed_query("warm-up")
    return real


@pytest.fixture
def database_url(pg_server: str) -> Iterator[str]:
    """A new, empty database on the session server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_url(pg_server).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh, migrated database."""
    eng = create_db_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings pointing at the test's database and a temporary home."""
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        max_body_bytes=4096,
        api_refusal_hold_s=0.0,  # tests of refusals want them at once; test_refusal_hold holds
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The real app over the test database; server errors come back as responses."""
    with TestClient(create_app(settings, engine), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api_key(engine: Engine) -> str:
    """A valid key of tenant `acme`."""
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "acme")
        return create_key(session, tenant_id, name="test")


@pytest.fixture
def api_url(settings: Settings, engine: Engine) -> Iterator[str]:
    """The real API served by uvicorn on loopback, with no worker (runs stay queued)."""
    with serve_in_thread(create_app(settings, engine)) as url:
        yield url


@pytest.fixture
def live_url(
    settings: Settings,
    engine: Engine,
    database_url: str,
    redis_url: str,
    inference_url: str,
    start_worker: WorkerFactory,
) -> Iterator[str]:
    """The API sending runs to a real worker over Redis (which calls the real inference
    server with the bundled model), served over HTTP."""
    start_worker(
        {
            "AGENTMILL_DATABASE_URL": database_url,
            "AGENTMILL_BROKER_URL": redis_url,
            "AGENTMILL_INFERENCE_URL": inference_url,
        }
    )
    producer = settings.model_copy(update={"broker_url": redis_url})
    queue = RunQueue(make_celery(producer, database_url))
    with serve_in_thread(create_app(producer, engine, run_queue=queue)) as url:
        yield url


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A fresh AGENTMILL_HOME for `agentmill up`; its Postgres is killed if a test leaks it."""
    from tests.cli.up_process import postgres_of  # it imports tests.services (a plugin, above)

    path = tmp_path / "home"
    yield path
    for proc in postgres_of(path):  # never leak a server, even when a test fails
        proc.kill()
