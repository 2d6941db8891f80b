"""Apply and inspect the append-only migration history in core/migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from core.errors import MigrationRequired

_SCRIPTS = Path(__file__).parent / "migrations"
# Serialises concurrent `migrate` runs (several API containers starting at once).
_ADVISORY_LOCK_ID = 0x6167656E746D696C  # "agentmil"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Migrate to the newest revision (a no-op when already there); return it."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        command.upgrade(_config(conn), "head")
    return head_revision()


def require_current(engine: Engine) -> None:
    """Raise `MigrationRequired` unless the database is at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise MigrationRequired(current, head)
