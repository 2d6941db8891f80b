"""Fixtures of the REST tests: the app with a recording queue, keys of two tenants, an agent
with a session to talk to, and an app whose memory store has the real embedder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings
from core.db import transaction
from core.tenants import create_key, ensure_tenant
from inference.embedder import SentenceTransformerEmbedder
from memory.store import MemoryStore
from tests.api.support import Headers, RecordingQueue


@pytest.fixture
def run_queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def client(settings: Settings, engine: Engine, run_queue: RecordingQueue) -> Iterator[TestClient]:
    """The real app over the test database, sending runs to `run_queue`."""
    app = create_app(settings, engine, run_queue=run_queue)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


MEMORY_MAX_CONTENT_CHARS = 1000
"""The memory tests' content limit: under the fixture's 4 KiB body limit, so 413 comes from
the memory layer."""


@pytest.fixture
def memory(
    settings: Settings, engine: Engine, embedder: SentenceTransformerEmbedder
) -> Iterator[MemoryStore]:
    """A MemoryStore with the real embedder and a small content limit."""
    limited = settings.model_copy(update={"memory_max_content_chars": MEMORY_MAX_CONTENT_CHARS})
    with MemoryStore(engine, embedder, limited) as store:
        yield store


@pytest.fixture
def memory_client(
    settings: Settings, engine: Engine, run_queue: RecordingQueue, memory: MemoryStore
) -> Iterator[TestClient]:
    """The real app with `memory` injected (test modules of memory routes use it as `client`)."""
    app = create_app(settings, engine, run_queue=run_queue, memory=memory)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def auth(api_key: str) -> Headers:
    """Headers of tenant `acme`."""
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def other_auth(engine: Engine) -> Headers:
    """Headers of another tenant, `globex`, which must see nothing of acme's."""
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, "globex")
        return {"Authorization": f"Bearer {create_key(session, tenant_id, name='other')}"}


@pytest.fixture
def agent_id(client: TestClient, auth: Headers) -> str:
    """An agent of acme."""
    response = client.post("/v1/agents", json={"name": "helper"}, headers=auth)
    assert response.status_code == 201, response.text
    ident: str = response.json()["id"]
    return ident


@pytest.fixture
def session_id(client: TestClient, auth: Headers, agent_id: str) -> str:
    """A session of acme's agent for end user `u1`."""
    response = client.post(f"/v1/agents/{agent_id}/sessions", json={"user_id": "u1"}, headers=auth)
    assert response.status_code == 201, response.text
    ident: str = response.json()["id"]
    return ident
