"""Which model id the local inference server answers to (light: no engine is imported)."""

from __future__ import annotations

from core.config import Settings

BUNDLED_MODEL_ID = "smollm2-135m-instruct"
"""Id of the bundled SmolLM2-135M-Instruct, served when no model is configured."""


def served_model_id(settings: Settings) -> str:
    """The model id the configured server answers to (what the router's `local` alias sends)."""
    if settings.inference_model is None:
        return BUNDLED_MODEL_ID
    model = settings.inference_model
    return model.stem if settings.inference_engine == "llama" else model.name
