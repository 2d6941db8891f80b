"""The model record of the vectors (memory.model_record) and the store's check against it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from core.config import Settings
from core.db import create_db_engine, transaction
from inference.embedder import SentenceTransformerEmbedder, configured_embedder
from memory import model_record
from memory.embedder import HashingEmbedder
from memory.errors import EmbeddingModelChanged
from memory.store import MemoryStore
from tests.memory.conftest import NamedHashing


def test_a_fresh_database_records_the_bundled_model(
    engine: Engine, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    with engine.connect() as conn:
        record = model_record.read(conn)
    # The literal in migration 0019 is the bundled model's real identity, and the default
    # embedder of every process is that model.
    default = configured_embedder(Settings(home=tmp_path))
    assert record == model_record.ModelRecord(default.identity, embedder.dimension)
    assert record.dimension == 384
    assert record.model is not None
    assert record.model.startswith("all-MiniLM-L6-v2@")
    assert model_record.check(engine, default) == record


def test_a_store_of_another_dimension_names_both_models_and_the_command(
    engine: Engine, memory_settings: Settings
) -> None:
    with pytest.raises(EmbeddingModelChanged) as info:
        MemoryStore(engine, HashingEmbedder(dimension=16), memory_settings)
    message = str(info.value)
    assert "all-MiniLM-L6-v2@" in message
    assert "(384 dimensions)" in message
    assert "an unnamed model (16 dimensions)" in message
    assert "agentmill memory reembed" in message
    assert (info.value.stored_dimension, info.value.configured_dimension) == (384, 16)


def test_a_named_model_of_the_same_dimension_is_refused_an_unnamed_one_is_not(
    engine: Engine, memory_settings: Settings
) -> None:
    with pytest.raises(EmbeddingModelChanged, match=r"hashing-384@.*\(384 dimensions\)"):
        MemoryStore(engine, NamedHashing(384), memory_settings)
    # A stand-in that names no model (tests, benchmarks) is held to the dimension alone.
    MemoryStore(engine, HashingEmbedder(384), memory_settings).close()


def test_the_record_is_written_in_the_callers_transaction(engine: Engine) -> None:
    with transaction(engine) as session:
        model_record.write(session.connection(), "other-model@0123456789ab")
    with engine.connect() as conn:
        assert model_record.read(conn).model == "other-model@0123456789ab"
    with transaction(engine) as session:
        model_record.write(session.connection(), None)
    assert model_record.check(engine, HashingEmbedder(384)).model is None


def test_a_store_built_while_the_database_is_down_checks_on_first_use(
    engine: Engine, memory_settings: Settings
) -> None:
    # A worker may start before Postgres: its store is built, and checks when first used.
    down = create_db_engine("postgresql://agentmill@127.0.0.1:1/none", connect_timeout_s=1)
    store = MemoryStore(down, HashingEmbedder(dimension=16), memory_settings)
    try:
        with pytest.raises(OperationalError):
            store.search(uuid.uuid4(), "anything")
        # Once the database answers, the check runs and refuses the wrong model.
        store.engine = engine
        with pytest.raises(EmbeddingModelChanged):
            store.search(uuid.uuid4(), "anything")
    finally:
        store.close()
        down.dispose()
