"""Administrative commands run in-process: `agentmill memory reembed`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cli.main import main
from core.config import Settings
from core.db import transaction
from core.tenants import ensure_tenant
from inference.embedder import SentenceTransformerEmbedder
from memory import model_record
from memory.records import NewMemory
from memory.reembed import reembed
from memory.store import MemoryStore
from tests.memory.conftest import NamedHashing


def test_memory_reembed_brings_the_vectors_back_to_the_configured_model(
    engine: Engine,
    database_url: str,
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    with transaction(engine) as session:
        tenant, _ = ensure_tenant(session, "acme")
    agent = uuid.uuid4()
    with MemoryStore(engine, embedder, settings) as memory:
        ada = memory.add(tenant, NewMemory(agent, "Ada's favourite colour is green", kind="fact"))
        memory.add(tenant, NewMemory(agent, "The office moved to Lyon in 2021", kind="fact"))
    reembed(engine, NamedHashing(16), settings)  # now the vectors are another model's

    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENTMILL_DATABASE_URL", database_url)
    monkeypatch.delenv("AGENTMILL_EMBEDDING_MODEL", raising=False)
    assert main(["memory", "reembed", "--batch-size", "1"]) == 0

    err = capsys.readouterr().err
    assert f"re-embedding memories with {embedder.identity}" in err
    assert "content vectors: 2/2" in err
    assert f"re-embedded 2 memories: {NamedHashing(16).identity} (16 dims) -> " in err
    assert f"-> {embedder.identity} (384 dims)" in err
    with engine.connect() as conn:
        assert model_record.read(conn) == model_record.ModelRecord(embedder.identity, 384)
    with MemoryStore(engine, embedder, settings) as memory:
        assert memory.search(tenant, "which colour does Ada like?", k=1)[0].memory.id == ada.id


def test_memory_reembed_refuses_a_bad_batch_size(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENTMILL_DATABASE_URL", database_url)
    assert main(["memory", "reembed", "--batch-size", "0"]) == 1
    assert "--batch-size must be at least 1" in capsys.readouterr().err
