"""FastAPI dependencies: the engine, settings, queue and event hub, the calling tenant, and the
ids in paths."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from agents.queue import RunSender
from api.events_hub import EventHub
from core.config import Settings
from core.db import transaction
from core.errors import AuthenticationError, NotFound
from core.tenants import Principal, authenticate


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


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Authorization header must be 'Bearer <key>'")
    return token.strip()


def get_principal(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Principal:
    """Authenticate the request's bearer key; 401 when it is missing, malformed or invalid."""
    token = _bearer_token(request)
    with transaction(engine) as session:
        return authenticate(session, token)


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


def run_id(run_id: Annotated[str, Path(description="A run id.")]) -> uuid.UUID:
    """The `{run_id}` of the path."""
    return parse_id("run", run_id)


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RunQueueDep = Annotated[RunSender, Depends(get_run_queue)]
EventsHubDep = Annotated[EventHub, Depends(get_events_hub)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AgentId = Annotated[uuid.UUID, Depends(agent_id)]
SessionId = Annotated[uuid.UUID, Depends(session_id)]
RunId = Annotated[uuid.UUID, Depends(run_id)]
