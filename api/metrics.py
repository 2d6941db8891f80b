"""The API's Prometheus metrics, the middleware that records them, and GET /metrics, which
serves the whole host's metrics (workers' included: core/metrics.py).

Requests are labelled by their route template (`/v1/runs/{run_id}`), never their path, so ids
never become label values; a path that matches no route is `unmatched`.
"""

from __future__ import annotations

import re
import time
import weakref

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.metrics import render_metrics

UNMATCHED = "unmatched"
"""The route label of a request no route matches."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods kept as labels; any other is `other` (a client must not mint label values)."""

REQUESTS = Counter(
    "agentmill_api_requests",
    "Requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "agentmill_api_request_seconds",
    "From a request's arrival to the end of its response (an event stream: its whole life), "
    "by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
OPEN_FOLLOWERS = Gauge(
    "agentmill_api_open_followers",
    "Event streams and wait=true requests open now.",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "agentmill_api_rate_limited",
    "Requests refused with 429 (a tenant's rate limit, an address's failed authentications, "
    "the stream caps), by route template.",
    ["route"],
)

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse)
def metrics() -> Response:
    """This host's metrics in the Prometheus text format (no authentication, like /healthz:
    they hold counts and timings, never tenant data)."""
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, or of the documented one its path
    matches when a middleware answered before routing (the body size limit)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    if not isinstance(app, FastAPI):
        return UNMATCHED
    for template, pattern in _templates(app):
        if pattern.fullmatch(scope.get("path", "")):
            return template
    return UNMATCHED


_TEMPLATES: weakref.WeakKeyDictionary[FastAPI, list[tuple[str, re.Pattern[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _templates(app: FastAPI) -> list[tuple[str, re.Pattern[str]]]:
    """The app's documented path templates, each with a pattern of the paths it matches."""
    templates = _TEMPLATES.get(app)
    if templates is None:
        templates = [(path, compile_path(path)[0]) for path in app.openapi()["paths"]]
        _TEMPLATES[app] = templates
    return templates


class RequestMetrics:
    """ASGI middleware: counts each request by route template and status, times it, and
    counts its 429s. It must be outside every middleware that answers by itself (the body
    size limit), so those answers are counted too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = route_template(scope)
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            if status == 429:
                RATE_LIMITED.labels(route).inc()
