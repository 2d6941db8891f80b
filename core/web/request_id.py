"""Every request gets an id: the caller's `X-Request-ID` when it is a plain token, else a new
one; it is echoed in the response's `X-Request-ID` and bound to the request's log lines
(`request_id`, core/log.py)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.log import bind

HEADER = b"x-request-id"
STATE_KEY = "request_id"
"""Where the id is kept in the ASGI scope's `state` (`request.state.request_id`)."""
_ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
"""What a caller's id may be: nothing that could forge or break a log line."""


def _presented(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == HEADER:
            text = value.decode("latin-1")
            return text if _ACCEPTED.fullmatch(text) else None
    return None


class RequestId:
    """ASGI middleware: binds the request's id for logging and sends it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _presented(scope) or uuid.uuid4().hex
        # Also kept in request.state, for the handler of unhandled errors, which runs outside.
        scope.setdefault("state", {})[STATE_KEY] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER]
                headers.append((HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with bind(request_id=request_id):
            await self.app(scope, receive, send_with_id)
