"""The embedded default broker: kombu's SQLAlchemy transport on our Postgres, polling faster.

kombu hands every transport option to `create_engine`, so its `polling_interval` option
breaks this transport; the interval is set on a subclass instead, registered under the
scheme `agentmill-sqla` (URLs look like `agentmill-sqla+postgresql+psycopg://...`).
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

SCHEME = "agentmill-sqla"
POLL_S = 0.2
"""How often an idle worker asks the database for a task (the default is 1 s)."""


class Transport(SQLAlchemyTransport):  # kombu is untyped: its classes are Any to mypy
    """kombu's SQLAlchemy transport with a shorter polling interval."""

    polling_interval = POLL_S


def register() -> None:
    """Make the scheme known to kombu (idempotent)."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
