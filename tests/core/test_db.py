"""The engine against real Postgres: a connection the server drops is a transient error, and
the pool replaces it, so the next transaction works; data errors are not transient."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from core.db import create_db_engine, is_transient_db_error, ping, transaction
from core.errors import DatabaseUnavailable


def _terminate_others(database_url: str) -> int:
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_a_dropped_connection_is_transient_and_the_pool_recovers(database_url: str) -> None:
    engine = create_db_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
            assert _terminate_others(database_url) == 1  # this very connection, mid-use
            with pytest.raises(DBAPIError) as caught:
                conn.execute(text("SELECT 1"))
        assert is_transient_db_error(caught.value)
        # The dead connection went back to the pool; pre-ping replaces it on checkout.
        with transaction(engine) as session:
            assert session.scalar(text("SELECT 2")) == 2
        _terminate_others(database_url)  # idle in the pool this time
        ping(engine)
    finally:
        engine.dispose()


def test_data_and_programming_errors_are_not_transient(engine: Engine) -> None:
    for statement in ("SELECT 'x'::int", "SELECT * FROM no_such_table"):
        with pytest.raises(DBAPIError) as caught, transaction(engine) as session:
            session.execute(text(statement))
        assert not is_transient_db_error(caught.value)
    assert not is_transient_db_error(ValueError("not a database error"))


def test_an_unreachable_database_is_transient() -> None:
    engine = create_db_engine(
        "postgresql://nobody@/none?host=/nonexistent-socket-dir", connect_timeout_s=1
    )
    try:
        with pytest.raises(DBAPIError) as caught, engine.connect():
            pass
        assert is_transient_db_error(caught.value)
        with pytest.raises(DatabaseUnavailable) as down:
            ping(engine)
        assert is_transient_db_error(down.value)
    finally:
        engine.dispose()
