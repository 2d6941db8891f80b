"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from agents.errors import InvalidSchedule, UnknownMcpServer
from agents.worker.queue import RunQueue, RunSender, make_celery
from api import metrics, ui
from api.deps import MemoryProvider
from api.events_hub import EventHub, libpq_url
from api.readiness import Readiness
from api.routes import (
    agents,
    batches,
    blocks,
    health,
    mcp_servers,
    me,
    memories,
    runs,
    schedules,
    sessions,
    webhooks,
)
from core.config import Settings
from core.tracing import configure_tracing, instrument_app, instrument_engine
from core.web import errors
from core.web.limits import BodySizeLimit
from core.web.rate_limit import RateLimiter, RateLimitHeaders
from core.web.refusal_hold import RefusalHold
from core.web.request_id import RequestId
from inference.embedder import configured_embedder
from memory.errors import BlockTooLarge, ContentTooLarge, EmptyContent, InvalidMemoryInput
from memory.store import MemoryStore

# The memory layer's caller errors are request validation failures, except sizes (413); so is
# an agent naming an MCP server the tenant has not registered, and a schedule that cannot be
# used.
MEMORY_ERROR_STATUSES = {
    UnknownMcpServer: 422,
    InvalidSchedule: 422,
    InvalidMemoryInput: 422,
    EmptyContent: 422,
    ContentTooLarge: 413,
    BlockTooLarge: 413,
}


def create_app(
    settings: Settings,
    engine: Engine,
    run_queue: RunSender | None = None,
    *,
    memory: MemoryStore | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the API over an engine the caller created (and the app disposes on shutdown).
    `run_queue` defaults to the Celery queue of `settings` (tests pass a recording fake).
    `memory` defaults to a store with the configured embedding model, built on the first request
    that needs it. The app closes the store on shutdown, a store passed in too (its background
    writer uses the engine the app disposes). `rate_limiter`, per tenant, defaults to one with
    the settings' rate and burst (tests pass one with a manual clock)."""
    if run_queue is None:
        database_url = engine.url.render_as_string(hide_password=False)
        run_queue = RunQueue(make_celery(settings, database_url))
    hub = EventHub(libpq_url(engine))

    def build_memory() -> MemoryStore:
        if memory is not None:
            return memory
        return MemoryStore(engine, configured_embedder(settings), settings)

    memory_provider = MemoryProvider(build_memory)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            memory_provider.close()
            engine.dispose()

    # Swagger UI and the dashboard are served from this package (api/ui): no CDN, offline too.
    app = FastAPI(
        title="agentmill", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.run_queue = run_queue
    app.state.events_hub = hub
    app.state.memory = memory_provider
    app.state.readiness = Readiness(settings, engine)
    if rate_limiter is None:
        rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    app.state.rate_limiter = rate_limiter
    hold = RefusalHold(settings.api_refusal_hold_s, settings.api_max_held_refusals)
    errors.install(app, MEMORY_ERROR_STATUSES, hold=hold)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitHeaders)  # reports what get_principal decided
    app.add_middleware(metrics.RequestMetrics)  # outside the size limit: counts its 413s too
    app.add_middleware(RequestId)
    app.include_router(metrics.router)
    for module in (health, me, agents, sessions, runs):
        app.include_router(module.router)
    app.include_router(memories.router)
    app.include_router(blocks.router)
    app.include_router(batches.router)
    app.include_router(mcp_servers.router)
    app.include_router(webhooks.router)
    app.include_router(schedules.router)
    ui.install(app)
    if configure_tracing(settings, "api"):  # off unless an OTLP endpoint is configured
        instrument_app(app)
        instrument_engine(engine)
    return app
