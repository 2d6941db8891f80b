"""The web dashboard at `/ui` and the API reference at `/docs`, both served from files in this
package (static/): no CDN, so both work offline.

The dashboard is static HTML and ES modules (Preact with htm templates, no build step; the
libraries are vendored by scripts/vendor_ui.sh). It signs in with an API key the browser keeps
for its tab only (sessionStorage) and does everything through the public REST API, so it sees
exactly what that key's tenant may see.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

# Only our own scripts, styles and API: a key typed into the dashboard can reach no one else.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _Hardened:
    """The static files, with the dashboard's security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Serve the dashboard at /ui and Swagger UI at /docs on `app` (made with docs_url=None
    and redoc_url=None, whose default pages load their scripts from a CDN)."""

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/ui/vendor/swagger-ui-bundle.js",
            swagger_css_url="/ui/vendor/swagger-ui.css",
            swagger_favicon_url="/ui/vendor/favicon.png",
        )

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui", _Hardened(StaticFiles(directory=STATIC, html=True)), name="ui")
