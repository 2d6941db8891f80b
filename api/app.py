"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from api.routes import health, me
from core.config import Settings
from core.web import errors
from core.web.limits import BodySizeLimit


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    """Build the API over an engine the caller created (and the app disposes on shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="agentmill", version="0.1.0", lifespan=lifespan)
    app.state.engine = engine
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(me.router)
    return app
