"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep
from core.db import ping
from core.web.errors import error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
def readyz(engine: EngineDep) -> dict[str, str]:
    """The database answers; 503 (error envelope) when it does not."""
    ping(engine)
    return {"status": "ready"}
