"""The one error envelope, `{"error": {"type", "message", "param"?}}`, for every failure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    AuthenticationError,
    Conflict,
    DatabaseUnavailable,
    NotFound,
    TooManyRequests,
    UserError,
)
from core.log import bind
from core.web.refusal_hold import RefusalHold
from core.web.request_id import STATE_KEY as REQUEST_ID_KEY

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    507: "insufficient_storage",
}


_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, a bad Content-Length.",
    401: "Missing, malformed, unknown or revoked API key.",
    404: "No such resource for this tenant (an id that is not a UUID names none).",
    409: "The request clashes with the current state.",
    413: "The body, or a text in it, is over its size limit.",
    422: "A parameter or body field failed validation; `param` names it.",
    429: "Rate limit or stream cap reached: retry after `Retry-After` seconds (the refusal "
    "may itself be held a moment first).",
    503: "The database does not answer, or all its connections are busy: retry after "
    "`Retry-After` seconds.",
    507: "The database's disk is below its free-space threshold: no new work is accepted.",
}


class ErrorDetail(BaseModel):
    """What went wrong."""

    type: str = Field(description="Machine-readable kind, e.g. validation_error.")
    message: str = Field(description="For people; never a stack trace.")
    param: str | None = Field(default=None, description="The parameter or field at fault.")


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting the envelope for each of `statuses` (for a
    router's or a route's `responses=`; a 422 entry replaces FastAPI's own, whose shape the
    handlers below never send)."""
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Build the envelope for `status`."""
    error: dict[str, Any] = {
        "type": _TYPES.get(status, HTTPStatus(status).phrase),
        "message": message,
    }
    if param is not None:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status, headers=headers)


StatusMap = Mapping[type[UserError], int]
"""HTTP status of `UserError` subclasses defined above core (the most specific listed wins)."""


def _user_error_status(exc: UserError, statuses: StatusMap) -> int:
    for cls in type(exc).__mro__:
        if cls in statuses:
            return statuses[cls]
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, AuthenticationError):
        return 401
    return 400


def _user_error_handler(statuses: StatusMap) -> Callable[[Request, Exception], Any]:
    async def on_user_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UserError)
        status = _user_error_status(exc, statuses)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, exc.message, param=exc.param, headers=headers)

    return on_user_error


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


def _param(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or str(loc[0])


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return error_response(400, "request body is not valid JSON")
    param = _param(tuple(first.get("loc", ())))
    message = f"{param}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return error_response(422, message, param=param)


DB_DOWN_RETRY_AFTER_S = 5
"""Retry-After of a 503 for a database that does not answer (a restart takes seconds)."""
POOL_BUSY_RETRY_AFTER_S = 1
"""Retry-After of a 503 for a full connection pool (busy, not broken: it drains quickly)."""


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": str(DB_DOWN_RETRY_AFTER_S)}
    return error_response(503, "database unavailable, try again shortly", headers=headers)


async def _on_pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    log.warning("connection pool exhausted during %s %s", request.method, request.url.path)
    headers = {"Retry-After": str(POOL_BUSY_RETRY_AFTER_S)}
    message = "the server is busy: every database connection is in use; retry shortly"
    return error_response(503, message, headers=headers)


def _too_many_handler(hold: RefusalHold | None) -> Callable[[Request, Exception], Any]:
    async def on_too_many(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TooManyRequests)
        retry_after_s = exc.retry_after_s
        if hold is not None:
            retry_after_s = await hold.hold(retry_after_s)
        headers = {"Retry-After": str(retry_after_s)}
        return error_response(429, str(exc), headers=headers)

    return on_too_many


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Starlette calls this outside the app's middleware, where the request's ids were bound.
    with bind(request_id=getattr(request.state, REQUEST_ID_KEY, None)):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error")


def status_of(exc: BaseException, statuses: StatusMap | None = None) -> int:
    """The HTTP status the handlers `install` registers answer `exc` with (for metrics that
    count an error before it reaches them)."""
    if isinstance(exc, TooManyRequests):
        return 429
    if isinstance(exc, UserError):
        return _user_error_status(exc, statuses or {})
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[:1]
        return 400 if first and first[0].get("type") == "json_invalid" else 422
    if isinstance(exc, DatabaseUnavailable | OperationalError | PoolTimeout):
        return 503
    return 500


def install(
    app: FastAPI, statuses: StatusMap | None = None, *, hold: RefusalHold | None = None
) -> None:
    """Register the handlers that turn every error into the envelope. `statuses` maps the
    caller's own `UserError` subclasses to their HTTP status (400 for any not listed); `hold`
    delays each 429 (see `core.web.refusal_hold`)."""
    app.add_exception_handler(UserError, _user_error_handler(statuses or {}))
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(TooManyRequests, _too_many_handler(hold))
    app.add_exception_handler(DatabaseUnavailable, _on_database_down)
    app.add_exception_handler(OperationalError, _on_database_down)
    app.add_exception_handler(PoolTimeout, _on_pool_exhausted)
    app.add_exception_handler(Exception, _on_unhandled)
