"""FastAPI dependencies: the engine and the calling tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from core.db import transaction
from core.errors import AuthenticationError
from core.tenants import Principal, authenticate


def get_engine(request: Request) -> Engine:
    """The process's engine, created once by the app factory."""
    engine: Engine = request.app.state.engine
    return engine


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


EngineDep = Annotated[Engine, Depends(get_engine)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
