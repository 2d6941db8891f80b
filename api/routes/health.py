"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.readiness import Readiness
from core.web.errors import error_responses

router = APIRouter(tags=["health"])


def get_readiness(request: Request) -> Readiness:
    """The app's component checker."""
    readiness: Readiness = request.app.state.readiness
    return readiness


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503), response_model=None)
def readyz(
    readiness: Annotated[Readiness, Depends(get_readiness)],
) -> dict[str, Any] | JSONResponse:
    """Each component (database, broker, inference, workers, disk); 200 while the database
    answers and its disk has room (status "ready", or "degraded" naming what is down), 503
    with the error envelope when it does not."""
    report = readiness.report()
    body = {"status": report.status, "components": report.components}
    if not report.database_ok or report.disk_problem is not None:
        if report.database_ok:  # up, but its disk is full: that takes longer than a restart
            message, retry = report.disk_problem, "60"
        else:
            message, retry = "the database does not answer", "5"
        error = {"type": "unavailable", "message": message}
        return JSONResponse(
            {"error": error, **body}, status_code=503, headers={"Retry-After": retry}
        )
    return body
