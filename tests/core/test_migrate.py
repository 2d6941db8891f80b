"""Migrations against a DATABASE_URL: a separately started embedded server's empty database."""

from __future__ import annotations

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
