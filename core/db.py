"""Engine and transactions. Repositories receive a `Session` from `transaction()`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from core.errors import DatabaseUnavailable


def sqlalchemy_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 driver SQLAlchemy should use."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://', 1)[0]}://…")


def is_transient_db_error(exc: BaseException) -> bool:
    """Whether a failed transaction may succeed if tried again: the connection dropped or could
    not be made (a restart, a failover, `pg_terminate_backend`), the pool was exhausted, or the
    server aborted it (deadlock, serialisation failure, admin shutdown: psycopg reports all of
    these as OperationalError). A data or programming error is not: it would fail again."""
    if isinstance(exc, DatabaseUnavailable | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return False


def create_db_engine(url: str, *, connect_timeout_s: int = 3, pool_size: int = 5) -> Engine:
    """An engine whose pool drops dead connections, so a restarted database is picked up:
    `pool_pre_ping` tests each connection as it leaves the pool, and a connection that dies
    mid-transaction is invalidated, so the retried transaction gets a fresh one."""
    return create_engine(
        sqlalchemy_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout_s,
        connect_args={"connect_timeout": connect_timeout_s, "application_name": "agentmill"},
    )


def ping(engine: Engine) -> None:
    """Run `SELECT 1`; raise `DatabaseUnavailable` when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit when the block ends, roll back if it raises."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
