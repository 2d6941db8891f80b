"""The OpenAI-compatible inference server (FastAPI app factory)."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from core.errors import UserError
from core.web import errors
from core.web.limits import BodySizeLimit
from inference.engines.base import Engine
from inference.errors import UnknownModel
from inference.server import completions
from inference.server.chat_template import CHATML, ChatTemplate
from inference.server.metrics import ServerMetrics
from inference.server.tokenize import TokenizeRequest, tokenize
from inference.wire import ChatCompletionRequest, EmbeddingRequest

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_EMBEDDING_INPUTS = 2048


class EmbeddingModel(Protocol):
    """What /v1/embeddings needs from an embedder."""

    model_id: str

    @property
    def dimensions(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text."""
        ...

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens in all texts together."""
        ...


def _base64(vector: list[float]) -> str:
    # OpenAI's format: little-endian float32 bytes, base64 (the openai client's default).
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def create_inference_app(
    engine: Engine, embedder: EmbeddingModel | None = None, *, created: int | None = None
) -> FastAPI:
    """Serve `engine` (chat) and `embedder` (embeddings) in the OpenAI wire format, and
    vLLM's /tokenize for the chat model."""
    template = ChatTemplate(engine.chat_template() or CHATML)
    metrics = ServerMetrics(engine)
    created_at = created or int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()

    app = FastAPI(title="agentmill inference", lifespan=lifespan)
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    def model_ids() -> list[str]:
        ids = [engine.model_id]
        if embedder is not None:
            ids.append(embedder.model_id)
        return ids

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=None)
    def readyz() -> dict[str, Any] | JSONResponse:
        """Readiness: the engine (which decoded at start-up) is running; 503 once it is not."""
        stats = engine.stats()
        body = {"model": engine.model_id, "waiting": stats.waiting, "running": stats.running}
        if not stats.alive:
            message = "the inference engine has stopped"
            return JSONResponse(
                {"error": {"type": "unavailable", "message": message}, **body}, status_code=503
            )
        return {"status": "ready", **body}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        data = [
            {"id": model, "object": "model", "created": created_at, "owned_by": "agentmill"}
            for model in model_ids()
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(
        body: ChatCompletionRequest, request: Request
    ) -> JSONResponse | StreamingResponse:
        try:
            if body.model != engine.model_id:
                raise UnknownModel(body.model, [engine.model_id])
            completion = await completions.start_completion(body, engine, template)
        except Exception as exc:
            metrics.count_error("chat", exc)
            raise
        metrics.count("chat", 200)
        if body.stream:
            return completions.stream(completion, body, metrics)
        return await completions.respond(completion, request, metrics)

    @app.post("/tokenize")
    async def tokenize_prompts(body: TokenizeRequest) -> dict[str, Any]:
        """Token counts with the model's own tokenizer (vLLM's shape; see server/tokenize.py)."""
        try:
            if body.model is not None and body.model != engine.model_id:
                raise UnknownModel(body.model, [engine.model_id])
            counted = await run_in_threadpool(tokenize, body, engine, template)
        except Exception as exc:
            metrics.count_error("tokenize", exc)
            raise
        metrics.count("tokenize", 200)
        return counted

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        try:
            answer = await embed(body)
        except Exception as exc:
            metrics.count_error("embeddings", exc)
            raise
        metrics.count("embeddings", 200)
        return answer

    async def embed(body: EmbeddingRequest) -> dict[str, Any]:
        if embedder is None or body.model != embedder.model_id:
            raise UnknownModel(body.model, [embedder.model_id] if embedder else [])
        texts = body.texts()
        if len(texts) > MAX_EMBEDDING_INPUTS:
            raise UserError(f"at most {MAX_EMBEDDING_INPUTS} inputs per request", param="input")
        if body.dimensions is not None and body.dimensions != embedder.dimensions:
            raise UserError(
                f"{embedder.model_id} returns {embedder.dimensions} dimensions only",
                param="dimensions",
            )
        vectors = await run_in_threadpool(embedder.embed, texts)
        tokens = await run_in_threadpool(embedder.count_tokens, texts)
        encode = _base64 if body.encoding_format == "base64" else (lambda v: v)
        return {
            "object": "list",
            "model": embedder.model_id,
            "data": [
                {"object": "embedding", "index": i, "embedding": encode(vector)}
                for i, vector in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return app
