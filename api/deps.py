"""FastAPI dependencies: the engine, settings, queue, event hub, the facades the routes call
(Agents, Runs, Batches, MemoryStore), the calling tenant (authenticated and rate-limited), and
the ids in paths."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from agents.batches.facade import Batches
from agents.facade import Agents
from agents.mcp.facade import McpServers
from agents.runs.facade import Runs
from agents.schedules.facade import Schedules
from agents.webhooks.facade import Webhooks
from agents.worker.queue import RunSender
from api.events_hub import EventHub
from api.metrics import OPEN_FOLLOWERS
from core.config import Settings
from core.db import transaction
from core.errors import AuthenticationError, NotFound, TooManyRequests
from core.log import annotate
from core.tenants import Principal, authenticate, parse_presented
from core.web.auth_guard import AuthGuard, client_key
from core.web.concurrency import ConcurrencyLimit
from core.web.rate_limit import STATE_KEY, Limiter
from core.web.redis_rate_limit import RedisRateLimiter
from memory.store import MemoryStore


def get_engine(request: Request) -> Engine:
    """The process's engine, created once by the app factory."""
    engine: Engine = request.app.state.engine
    return engine


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_run_queue(request: Request) -> RunSender:
    """Where new runs are sent (after their transaction commits)."""
    queue: RunSender = request.app.state.run_queue
    return queue


def get_events_hub(request: Request) -> EventHub:
    """The process's run-event listener."""
    hub: EventHub = request.app.state.events_hub
    return hub


class MemoryProvider:
    """The API process's one `MemoryStore`, built on first use: loading the embedding model
    takes seconds, and start-up and most routes never need it."""

    def __init__(self, build: Callable[[], MemoryStore]) -> None:
        self._build = build
        self._store: MemoryStore | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the store exists yet (start-up must not build it)."""
        return self._store is not None

    def get(self) -> MemoryStore:
        """The store, building it on the first call (routes run in a thread pool: locked)."""
        with self._lock:
            if self._store is None:
                self._store = self._build()
            return self._store

    def close(self) -> None:
        """Close the store if it was built: write its pending access statistics and stop its
        background writer (before the engine it uses is disposed). Closing twice is harmless."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


def get_agents(request: Request) -> Agents:
    """Agents, sessions, messages and erasure, over the process's engine."""
    return Agents(get_engine(request))


def get_mcp_servers(request: Request) -> McpServers:
    """The tenants' MCP servers (headers sealed with the deployment's secret key)."""
    return McpServers(get_engine(request), get_settings(request))


def get_webhooks(request: Request) -> Webhooks:
    """The tenants' webhook endpoints (secrets sealed with the deployment's key)."""
    return Webhooks(get_engine(request), get_settings(request))


def get_schedules(request: Request) -> Schedules:
    """The tenants' schedules."""
    return Schedules(get_engine(request))


def get_runs(request: Request) -> Runs:
    """What the routes read of runs."""
    return Runs(get_engine(request))


def get_batches(request: Request) -> Batches:
    """Batches; their runs go to the process's run queue after each commit."""
    return Batches(get_engine(request), get_run_queue(request).enqueue_run)


def get_memory(request: Request) -> MemoryStore:
    """Long-term memories and core blocks (the first call loads the embedding model)."""
    provider: MemoryProvider = request.app.state.memory
    return provider.get()


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be 'Bearer <key>'")
    return token.strip()


@dataclass(frozen=True)
class Guards:
    """The process's limits on its callers, from the settings."""

    auth: AuthGuard
    """Key cache and failed-authentication limit per client address."""
    followers: ConcurrencyLimit
    """Open event streams and waits, per tenant and in all."""
    rate_limiter: Limiter
    """Requests per tenant: shared through Redis when configured, else the app's own."""

    @classmethod
    def build(cls, settings: Settings, rate_limiter: Limiter) -> Guards:
        """The guards of `settings`; `rate_limiter` is used unless Redis shares the buckets."""
        shared = settings.shared_rate_limit_url
        if shared is not None:
            rate_limiter = RedisRateLimiter(
                shared, settings.rate_limit_per_minute, settings.rate_limit_burst
            )
        return cls(
            auth=AuthGuard(
                failures_per_minute=settings.auth_failures_per_minute,
                ttl_s=settings.auth_cache_ttl_s,
            ),
            followers=ConcurrencyLimit(
                per_key=settings.api_max_streams_per_tenant,
                total=settings.api_max_streams,
                what="open event streams and waits",
                on_change=OPEN_FOLLOWERS.inc,
            ),
            rate_limiter=rate_limiter,
        )


_GUARDS_LOCK = threading.Lock()


def get_guards(request: Request) -> Guards:
    """The app's guards, built from its settings on first use (or set on `app.state.guards`)."""
    state = request.app.state
    guards: Guards | None = getattr(state, "guards", None)
    if guards is None:
        with _GUARDS_LOCK:
            guards = getattr(state, "guards", None)
            if guards is None:
                guards = state.guards = Guards.build(state.settings, state.rate_limiter)
    return guards


def get_principal(
    request: Request,
    engine: Annotated[Engine, Depends(get_engine)],
    guards: Annotated[Guards, Depends(get_guards)],
) -> Principal:
    """Authenticate the request's bearer key (401 when it is missing, malformed or invalid;
    429 when its address failed too often), then spend one request of its tenant's rate limit
    (429 with Retry-After when none is left). Every authenticated route depends on this once,
    so a request counts once, a stream too. Known keys come from a brief cache."""
    token = _bearer_token(request) or ""
    parse_presented(token)  # missing or malformed: 401 before any lookup, nothing counted
    hub: EventHub = request.app.state.events_hub
    epoch = hub.key_epoch  # read before the lookup: a revocation during it invalidates it

    def lookup(presented: str) -> Principal:
        with transaction(engine) as session:
            return authenticate(session, presented)

    address = client_key(request.client.host if request.client is not None else None)
    principal = guards.auth.authenticate(token, address, lookup, epoch)
    annotate(tenant_id=principal.tenant_id)  # the request's log lines name its tenant
    limiter = guards.rate_limiter
    decision = limiter.take(principal.tenant_id)
    if decision is not None:
        setattr(request.state, STATE_KEY, decision)  # for the X-RateLimit-* headers
        if not decision.allowed:
            raise TooManyRequests(
                f"rate limit of {limiter.per_minute} requests per minute exceeded for this "
                f"tenant; retry after {decision.retry_after_s} s",
                retry_after_s=decision.retry_after_s,
            )
    return principal


def parse_id(kind: str, raw: str) -> uuid.UUID:
    """A path id; one that is not a UUID names nothing, so it is a 404 like any unknown id."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(kind, raw) from None


def agent_id(agent_id: Annotated[str, Path(description="An agent id.")]) -> uuid.UUID:
    """The `{agent_id}` of the path."""
    return parse_id("agent", agent_id)


def session_id(session_id: Annotated[str, Path(description="A session id.")]) -> uuid.UUID:
    """The `{session_id}` of the path."""
    return parse_id("session", session_id)


def memory_id(memory_id: Annotated[str, Path(description="A memory id.")]) -> uuid.UUID:
    """The `{memory_id}` of the path."""
    return parse_id("memory", memory_id)


def owned_agent_id(principal: PrincipalDep, agent_id: AgentId, agents: AgentsDep) -> uuid.UUID:
    """The `{agent_id}` of the path, once checked to be the caller's (404 otherwise)."""
    agents.get(principal.tenant_id, agent_id)
    return agent_id


def mcp_server_id(
    server_id: Annotated[str, Path(description="An MCP server id.")],
) -> uuid.UUID:
    """The `{server_id}` of the path."""
    return parse_id("mcp server", server_id)


def webhook_id(webhook_id: Annotated[str, Path(description="A webhook id.")]) -> uuid.UUID:
    """The `{webhook_id}` of the path."""
    return parse_id("webhook", webhook_id)


def schedule_id(schedule_id: Annotated[str, Path(description="A schedule id.")]) -> uuid.UUID:
    """The `{schedule_id}` of the path."""
    return parse_id("schedule", schedule_id)


def delivery_id(delivery_id: Annotated[str, Path(description="A delivery id.")]) -> uuid.UUID:
    """The `{delivery_id}` of the path."""
    return parse_id("delivery", delivery_id)


def run_id(run_id: Annotated[str, Path(description="A run id.")]) -> uuid.UUID:
    """The `{run_id}` of the path."""
    return parse_id("run", run_id)


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RunQueueDep = Annotated[RunSender, Depends(get_run_queue)]
EventsHubDep = Annotated[EventHub, Depends(get_events_hub)]
MemoryDep = Annotated[MemoryStore, Depends(get_memory)]
AgentsDep = Annotated[Agents, Depends(get_agents)]
RunsDep = Annotated[Runs, Depends(get_runs)]
McpServersDep = Annotated[McpServers, Depends(get_mcp_servers)]
WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]
SchedulesDep = Annotated[Schedules, Depends(get_schedules)]
BatchesDep = Annotated[Batches, Depends(get_batches)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
GuardsDep = Annotated[Guards, Depends(get_guards)]
AgentId = Annotated[uuid.UUID, Depends(agent_id)]
SessionId = Annotated[uuid.UUID, Depends(session_id)]
RunId = Annotated[uuid.UUID, Depends(run_id)]
McpServerId = Annotated[uuid.UUID, Depends(mcp_server_id)]
WebhookId = Annotated[uuid.UUID, Depends(webhook_id)]
ScheduleId = Annotated[uuid.UUID, Depends(schedule_id)]
DeliveryId = Annotated[uuid.UUID, Depends(delivery_id)]
MemoryId = Annotated[uuid.UUID, Depends(memory_id)]
OwnedAgentId = Annotated[uuid.UUID, Depends(owned_agent_id)]
