"""An OpenAI-compatible HTTP endpoint whose answer a test sets: a status with an error body
that names hosts, ports and secrets (which must never reach a tenant), or a real completion,
streamed or not. The real RouterClient (litellm, openai, httpx) talks to it over loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from core.web.threaded import serve_in_thread

LEAKY_DETAIL = (
    "upstream http://10.9.8.7:5433/v1 refused: role 'svc_admin' password=hunter2 "
    "at postgres://svc_admin@db.internal:6432/prod"
)
"""What a provider's error says; the words in LEAKY_WORDS must not appear in a run."""
LEAKY_WORDS = ("10.9.8.7", "5433", "svc_admin", "hunter2", "db.internal", "http://", "6432")


@dataclass
class Provider:
    """The endpoint's behaviour, changed by the test as it goes."""

    url: str
    """Base URL (…/v1)."""
    status: int = 200
    """200 answers with `content`; anything else is an error with LEAKY_DETAIL."""
    failures_left: int | None = None
    """With an error `status`: how many requests get it before the answers come back (a
    server that restarts); None: all of them."""
    content: str = "back again"
    """The answer's text."""
    calls: int = 0
    """Chat completion requests received."""


def _chunk(delta: dict[str, str], finish: str | None) -> str:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def _app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> Response:
        provider.calls += 1
        body = await request.json()
        failing = provider.status != 200 and provider.failures_left != 0
        if failing and provider.failures_left is not None:
            provider.failures_left -= 1
        if failing:
            error = {"error": {"message": LEAKY_DETAIL, "type": "upstream_error", "code": None}}
            return JSONResponse(error, status_code=provider.status)
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if body.get("stream"):

            def events() -> Iterator[str]:
                yield _chunk({"role": "assistant", "content": provider.content}, None)
                yield _chunk({}, "stop")
                final = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": "fake",
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(final)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        message = {"role": "assistant", "content": provider.content}
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "fake",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    return app


@contextmanager
def fake_provider() -> Iterator[Provider]:
    """Serve a Provider on loopback for the block."""
    provider = Provider(url="")
    with serve_in_thread(_app(provider)) as base:
        provider.url = f"{base}/v1"
        yield provider
