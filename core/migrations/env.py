"""Alembic environment: always run through `core.migrate`, which passes the connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from core.models import Base


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `agentmill migrate`, not the alembic command")
_run(connection)
