"""Migrations against a DATABASE_URL: a separately started embedded server's empty database."""

from __future__ import annotations

import random
import string
import uuid

import pytest
from sqlalchemy import inspect, text

from core import migrate
from core.config import Settings
from core.connect import open_database
from core.db import create_db_engine
from core.errors import MigrationRequired


def test_migrates_an_empty_database_to_head_idempotently(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        assert migrate.current_revision(engine) is None
        with pytest.raises(MigrationRequired, match="agentmill migrate"):
            migrate.require_current(engine)
        assert migrate.upgrade(engine) == migrate.head_revision()
        assert migrate.upgrade(engine) == migrate.head_revision()  # a no-op the second time
        migrate.require_current(engine)
        tables = set(inspect(engine).get_table_names())
        assert {"tenants", "api_keys", "alembic_version"} <= tables
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM pg_extension WHERE extname='vector'"))
    finally:
        engine.dispose()


def test_external_database_is_not_migrated_implicitly(database_url: str, tmp_path: object) -> None:
    settings = Settings(database_url=database_url)
    with pytest.raises(MigrationRequired), open_database(settings):
        pass
    with open_database(settings, upgrade=True) as engine:
        assert migrate.current_revision(engine) == migrate.head_revision()
    with open_database(settings) as engine:
        assert migrate.current_revision(engine) == migrate.head_revision()


def test_history_is_linear() -> None:
    from alembic.script import ScriptDirectory

    from core.migrate import _config

    heads = ScriptDirectory.from_config(_config()).get_heads()
    assert len(heads) == 1


def test_0008_moves_memory_vectors_back_onto_their_rows(database_url: str) -> None:
    """Rows written before 0008 had their vectors moved out of line by TOAST; the upgrade
    rewrites them inline, values unchanged."""
    from alembic import command

    from core.migrate import _config

    rng = random.Random(3)  # noqa: S311 - test data, not secrets
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(400)]
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_config(conn), "0007")
        with engine.begin() as conn:
            tenant = conn.scalar(
                text("INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), 't') RETURNING id")
            )
            for _ in range(20):
                conn.execute(
                    text(
                        "INSERT INTO memories (id, tenant_id, agent_id, user_id, kind, content, "
                        "context, embedding, context_embedding) VALUES (gen_random_uuid(), :t, "
                        ":a, 'u', 'episodic', "
                        ":content, :context, CAST(:v AS halfvec), CAST(:w AS halfvec))"
                    ),
                    {
                        "t": tenant,
                        "a": uuid.uuid4(),
                        "content": " ".join(rng.choices(words, k=15)),
                        "context": " ".join(rng.choices(words, k=90)),
                        "v": str([round(rng.uniform(-1, 1), 3) for _ in range(384)]),
                        "w": str([round(rng.uniform(-1, 1), 3) for _ in range(384)]),
                    },
                )
        out_of_line = text(
            "SELECT count(*) FILTER (WHERE pg_column_toast_chunk_id(embedding) IS NOT NULL "
            "OR pg_column_toast_chunk_id(context_embedding) IS NOT NULL) FROM memories"
        )
        vectors = text("SELECT id, embedding::text, context_embedding::text FROM memories")
        with engine.connect() as conn:
            assert conn.scalar(out_of_line) > 0
            before = sorted(conn.execute(vectors).all())
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.scalar(out_of_line) == 0
            assert sorted(conn.execute(vectors).all()) == before
            stats = conn.scalars(
                text("SELECT stxname FROM pg_statistic_ext ORDER BY stxname")
            ).all()
            assert stats == ["memories_scope_agents", "memories_scope_users"]
    finally:
        engine.dispose()
