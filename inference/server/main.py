"""`agentmill inference`: build the configured engine and serve it."""

from __future__ import annotations

import logging

import uvicorn

from core.config import Settings
from core.tracing import configure_tracing, instrument_app
from inference.bundled import served_model_id
from inference.engines.base import Engine
from inference.engines.llama.engine import LlamaEngine
from inference.server import selfcheck
from inference.server.app import EmbeddingModel, create_inference_app

log = logging.getLogger(__name__)


def build_engine(settings: Settings) -> Engine:
    """The engine the settings name, loaded and ready."""
    if settings.inference_engine == "transformers":
        from inference.engines.hf.engine import TransformersEngine

        if settings.inference_model is None:
            raise ValueError(
                "the transformers engine needs AGENTMILL_INFERENCE_MODEL (a model dir)"
            )
        return TransformersEngine(
            settings.inference_model,
            model_id=served_model_id(settings),
            dummy_weights=settings.inference_dummy_weights,
            slots=settings.inference_slots,
            max_waiting=settings.inference_max_waiting,
            context_tokens=settings.inference_context,
        )
    return LlamaEngine(
        settings.inference_model,
        model_id=served_model_id(settings),
        slots=settings.inference_slots,
        context_per_slot=settings.inference_context,
        threads=settings.inference_threads,
        max_waiting=settings.inference_max_waiting,
        reuse_prefix=settings.inference_prefix_reuse,
    )


def build_embedder(settings: Settings) -> EmbeddingModel:
    """The configured sentence embedder (AGENTMILL_EMBEDDING_MODEL, else all-MiniLM-L6-v2)."""
    from inference.server.embeddings import SentenceEmbeddings

    return SentenceEmbeddings.configured(settings)


def serve(settings: Settings) -> int:
    """Check that the engine decodes, then serve it until SIGINT/SIGTERM.

    The llama engine is tried in a child process first (a native crash there becomes a clear
    EngineCheckFailed here), then warmed up in this one; only then does the server listen, so
    /readyz is never 200 for an engine that cannot generate."""
    if settings.inference_engine == "llama":
        selfcheck.check_in_child(settings)
    engine = build_engine(settings)
    try:
        tokens = selfcheck.warm_up(engine, settings.inference_engine)
    except BaseException:
        engine.close()
        raise
    log.info("%s engine decoded %d tokens at start-up", settings.inference_engine, tokens)
    app = create_inference_app(engine, build_embedder(settings))
    if configure_tracing(settings, "inference"):  # off unless an OTLP endpoint is configured
        instrument_app(app)
    uvicorn.run(
        app,
        host=settings.inference_host,
        port=settings.inference_port,
        log_level=settings.log_level.lower(),
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=5,
    )
    return 0
