"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from agents.queue import RunQueue, RunSender, make_celery
from api.events_hub import EventHub, libpq_url
from api.routes import agents, health, me, runs, sessions
from core.config import Settings
from core.web import errors
from core.web.limits import BodySizeLimit


def create_app(settings: Settings, engine: Engine, run_queue: RunSender | None = None) -> FastAPI:
    """Build the API over an engine the caller created (and the app disposes on shutdown).
    `run_queue` defaults to the Celery queue of `settings` (tests pass a recording fake)."""
    if run_queue is None:
        database_url = engine.url.render_as_string(hide_password=False)
        run_queue = RunQueue(make_celery(settings, database_url))
    hub = EventHub(libpq_url(engine))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            engine.dispose()

    app = FastAPI(title="agentmill", version="0.1.0", lifespan=lifespan)
    app.state.engine = engine
    app.state.settings = settings
    app.state.run_queue = run_queue
    app.state.events_hub = hub
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for module in (health, me, agents, sessions, runs):
        app.include_router(module.router)
    return app
