"""`agentmill api`: serve the REST API over an already migrated database."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from core import migrate
from core.config import Settings
from core.connect import database_url
from core.db import create_db_engine


def serve(settings: Settings) -> int:
    """Run uvicorn until SIGINT/SIGTERM."""
    engine = create_db_engine(
        database_url(settings, wait_s=5), connect_timeout_s=settings.db_connect_timeout_s
    )
    migrate.require_current(engine)
    app = create_app(settings, engine)
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # JSON: uvicorn's own lines go through agentmill's handler too (uvicorn's config
        # would print them as text).
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=10,
    )
    return 0
