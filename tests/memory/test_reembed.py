"""`memory.reembed`: every memory's vectors again with another model, on real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, text

from core.config import Settings
from inference.embedder import SentenceTransformerEmbedder
from memory import model_record, writer
from memory.errors import EmbeddingModelChanged
from memory.records import NewMemory
from memory.reembed import reembed
from memory.scope_indexes import ScopeIndexer, existing_indexes
from memory.store import MemoryStore
from tests.memory.conftest import NamedHashing

TURNS = ("we adopted a beagle puppy", "her name is biscuit", "she chews every shoe")


def _store_some(memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID) -> dict[str, uuid.UUID]:
    session = uuid.uuid4()
    ids = {
        text: result.id
        for text, result in zip(
            TURNS,
            memory.add_many(tenant, [NewMemory(agent, t, session_id=session) for t in TURNS]),
            strict=True,
        )
    }
    given = NewMemory(agent, "the dentist moved to tuesday", kind="fact", context="calendar note")
    ids["given"] = memory.add(tenant, given).id
    ids["plain"] = memory.add(tenant, NewMemory(agent, "paris trip in april", kind="fact")).id
    return ids


def _vectors(engine: Engine, memory_id: uuid.UUID) -> tuple[Any, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT embedding::text, context_embedding::text FROM memories WHERE id = :id"),
            {"id": memory_id},
        ).one()
    content, context = (np.asarray([float(x) for x in v.strip("[]").split(",")]) for v in row)
    return content, context


def _unit(vectors: Sequence[Any]) -> Any:
    total = np.sum(vectors, axis=0)
    return total / np.linalg.norm(total)


def _catalog(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT attname, format_type(atttypid, atttypmod), attstorage, attnotnull "
                "FROM pg_attribute WHERE attrelid = CAST('memories' AS regclass) "
                "AND attname IN ('embedding', 'context_embedding') ORDER BY attname"
            )
        ).all()
        indexes = conn.execute(
            text(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = CAST('memories' AS regclass) AND i.indisvalid "
                "AND pg_get_indexdef(i.indexrelid) LIKE '%hnsw%'"
            )
        ).scalars()
        return {"columns": [tuple(c) for c in columns], "hnsw": set(indexes)}


def test_reembed_moves_every_memory_to_a_model_of_another_dimension(
    engine: Engine,
    memory: MemoryStore,
    memory_settings: Settings,
    embedder: SentenceTransformerEmbedder,
    tenant: uuid.UUID,
    agent: uuid.UUID,
) -> None:
    ids = _store_some(memory, tenant, agent)
    settings = memory_settings.model_copy(update={"memory_scope_index_min_rows": 2})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE memories"))
    indexer = ScopeIndexer(engine, min_rows=2, max_scopes=10)
    assert indexer.run_once().created  # the agent's scope indexes, dropped and rebuilt below
    seen: list[tuple[str, int, int]] = []
    other = NamedHashing(16)

    result = reembed(engine, other, settings, batch=2, progress=lambda *a: seen.append(a))

    assert result.memories == 5
    assert result.before == model_record.ModelRecord(embedder.identity, 384)
    assert result.after == model_record.ModelRecord(other.identity, 16)
    assert seen == [  # batches of 2; 4 memories have a context (3 turns, 1 given)
        ("content", 2, 5),
        ("content", 4, 5),
        ("content", 5, 5),
        ("context", 2, 4),
        ("context", 4, 4),
    ]
    catalog = _catalog(engine)
    assert catalog["columns"] == [
        ("context_embedding", "halfvec(16)", "p", True),
        ("embedding", "halfvec(16)", "p", True),
    ]
    with engine.connect() as conn:
        scoped = {index.name for index in existing_indexes(conn) if index.valid}
    assert result.scope_indexes == len(scoped) == 2
    assert catalog["hnsw"] == {"ix_memories_embedding", "ix_memories_context_embedding"} | scoped

    # The vectors are the writer's, from the new model.
    first, second, third = (other.embed([t])[0] for t in TURNS)
    content, context = _vectors(engine, ids[TURNS[1]])
    assert np.allclose(content, second, atol=1e-3)
    assert np.allclose(context, _unit([second, first, third]), atol=1e-3)
    given = writer.context_text("the dentist moved to tuesday", "calendar note")
    assert np.allclose(_vectors(engine, ids["given"])[1], other.embed([given])[0], atol=1e-3)
    plain_content, plain_context = _vectors(engine, ids["plain"])
    assert np.allclose(plain_content, plain_context)

    with MemoryStore(engine, other, memory_settings) as moved:
        hits = moved.search(tenant, "biscuit name", k=1)
        assert hits[0].memory.id == ids[TURNS[1]]
        added = moved.add(tenant, NewMemory(agent, "a new memory in sixteen dimensions"))
        assert moved.search(tenant, "sixteen dimensions", k=1)[0].memory.id == added.id
    with pytest.raises(EmbeddingModelChanged, match="hashing-16@"):
        MemoryStore(engine, embedder, memory_settings)


class _FailsLater(NamedHashing):
    def __init__(self) -> None:
        super().__init__(16)
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("model crashed")
        return super().embed(texts)


def test_a_failed_reembed_changes_nothing(
    engine: Engine,
    memory: MemoryStore,
    memory_settings: Settings,
    embedder: SentenceTransformerEmbedder,
    tenant: uuid.UUID,
    agent: uuid.UUID,
) -> None:
    ids = _store_some(memory, tenant, agent)
    before = _catalog(engine)
    with pytest.raises(RuntimeError, match="model crashed"):
        reembed(engine, _FailsLater(), memory_settings, batch=2)
    assert _catalog(engine) == before
    with engine.connect() as conn:
        assert model_record.read(conn) == model_record.ModelRecord(embedder.identity, 384)
    assert memory.search(tenant, "adopting a beagle", k=1)[0].memory.id == ids[TURNS[0]]
