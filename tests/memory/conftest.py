"""Memory fixtures: a `MemoryStore` with the real embedder (tests/conftest.py loads it once per
test session) on a fresh migrated database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.config import Settings
from core.db import transaction
from core.tenants import ensure_tenant
from inference.embedder import SentenceTransformerEmbedder
from memory import erasure
from memory.embedder import HashingEmbedder
from memory.store import MemoryStore


@pytest.fixture
def memory_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings with a small content limit so the limit is cheap to test."""
    return Settings(home=tmp_path / "home", database_url=database_url, memory_max_content_chars=500)


@pytest.fixture
def memory(
    engine: Engine, embedder: SentenceTransformerEmbedder, memory_settings: Settings
) -> Iterator[MemoryStore]:
    """A MemoryStore over the test database with the real embedder."""
    with MemoryStore(engine, embedder, memory_settings) as store:
        yield store


def make_tenant(engine: Engine, name: str) -> uuid.UUID:
    """Create a tenant and return its id."""
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, name)
    return tenant_id


def erase_user(
    engine: Engine, tenant_id: uuid.UUID, user_id: str, agent_id: uuid.UUID | None = None
) -> int:
    """Erase an end user's memories and core blocks (of one agent, or all) as the erase routes
    do in the memory layer; returns how many memories and blocks went."""
    with transaction(engine) as session:
        erasure.record_user_erasure(session, tenant_id, user_id, agent_id)
        erased = erasure.erase_user_memories(session, tenant_id, user_id, agent_id, [])
    return erased.memories + erased.blocks


@pytest.fixture
def tenant(engine: Engine) -> uuid.UUID:
    """Tenant `acme`."""
    return make_tenant(engine, "acme")


@pytest.fixture
def agent() -> uuid.UUID:
    """An agent id (agents have no table yet)."""
    return uuid.uuid4()


class NamedHashing(HashingEmbedder):
    """A HashingEmbedder that names a model, as the real embedder does: the *other* model of
    the model-record and re-embed tests."""

    @property
    def identity(self) -> str:
        """A fixed name and fingerprint per dimension."""
        return f"hashing-{self.dimension}@{self.dimension:012x}"
