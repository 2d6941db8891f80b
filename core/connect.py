"""Reach the configured database: a DATABASE_URL, or the embedded server of AGENTMILL_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from core import migrate
from core.config import Settings
from core.db import create_db_engine
from core.embedded_pg import embedded_database, running_url, wait_for_running
from core.errors import DatabaseUnavailable


def database_url(settings: Settings, *, wait_s: float = 0.0) -> str:
    """The database a process that does not own one should use: AGENTMILL_DATABASE_URL, or the
    embedded server `agentmill up` runs on this home (waited for up to `wait_s` seconds while
    it starts). `DatabaseUnavailable` naming both ways to get one when there is neither."""
    if settings.database_url is not None:
        return settings.database_url
    url: str | None
    if wait_s > 0:  # until it answers, not only until its address is written
        try:
            url = wait_for_running(settings.pg_dir, timeout_s=wait_s)
        except DatabaseUnavailable:
            url = None
    else:
        url = running_url(settings.pg_dir)
    if url is None:
        raise DatabaseUnavailable(
            "no database: set AGENTMILL_DATABASE_URL, or start `agentmill up` (which runs the "
            f"embedded one in {settings.pg_dir})"
        )
    return url


@contextmanager
def open_database(settings: Settings, *, upgrade: bool = False) -> Iterator[Engine]:
    """An engine for the block, with the schema at head.

    Embedded: attach to the server `agentmill up` runs on this home, or own one for the block,
    and migrate it (it is ours). External: migrate only when `upgrade` is asked; otherwise
    refuse a schema that is behind with `MigrationRequired`.
    """
    if settings.database_url is not None:
        engine = create_db_engine(
            settings.database_url, connect_timeout_s=settings.db_connect_timeout_s
        )
        try:
            if upgrade:
                migrate.upgrade(engine)
            else:
                migrate.require_current(engine)
            yield engine
        finally:
            engine.dispose()
        return
    with embedded_database(settings.home) as (url, _owned):
        engine = create_db_engine(url, connect_timeout_s=settings.db_connect_timeout_s)
        try:
            migrate.upgrade(engine)
            yield engine
        finally:
            engine.dispose()
