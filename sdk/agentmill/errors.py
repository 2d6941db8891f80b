"""Errors raised by the SDK, built from the server's error envelope.

AgentmillAPIError        any non-2xx answer: status, type, message, param
 ├── AuthenticationError 401
 └── NotFoundError       404
"""

from __future__ import annotations

import httpx


class AgentmillAPIError(Exception):
    """The server answered with an error envelope (or something that is not one)."""

    def __init__(self, status: int, type_: str, message: str, param: str | None = None) -> None:
        super().__init__(f"{status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.message = message
        self.param = param


class AuthenticationError(AgentmillAPIError):
    """The API key is missing, malformed, unknown or revoked."""


class NotFoundError(AgentmillAPIError):
    """The resource does not exist for this key's tenant."""


def raise_for_error(response: httpx.Response) -> None:
    """Raise the matching error for a non-2xx response."""
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        type_, message, param = error["type"], error["message"], error.get("param")
    except (ValueError, KeyError, TypeError):
        type_, message, param = "http_error", response.text[:200] or response.reason_phrase, None
    cls = {401: AuthenticationError, 404: NotFoundError}.get(
        response.status_code, AgentmillAPIError
    )
    raise cls(response.status_code, type_, message, param)
