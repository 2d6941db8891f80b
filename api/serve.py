"""`agentmill api`: serve the REST API over an already migrated database."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from core import migrate
from core.config import Settings
from core.db import create_db_engine
from core.embedded_pg import wait_for_running
from core.errors import DatabaseUnavailable


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url
    try:
        return wait_for_running(settings.pg_dir, timeout_s=5)
    except DatabaseUnavailable:
        raise DatabaseUnavailable(
            "no database: set AGENTMILL_DATABASE_URL, or run `agentmill up` (which starts the "
            f"embedded one in {settings.home})"
        ) from None


def serve(settings: Settings) -> int:
    """Run uvicorn until SIGINT/SIGTERM."""
    engine = create_db_engine(
        _database_url(settings), connect_timeout_s=settings.db_connect_timeout_s
    )
    migrate.require_current(engine)
    app = create_app(settings, engine)
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )
    return 0
