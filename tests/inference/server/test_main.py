"""Building the configured engine: the id it serves is the one the router's `local` alias sends."""

from __future__ import annotations

from pathlib import Path

from core.config import Settings
from inference.bundled import served_model_id
from inference.engines.llama.native import bundled_gguf
from inference.server.main import build_engine


def test_served_model_ids() -> None:
    assert served_model_id(Settings()) == "smollm2-135m-instruct"
    gguf = Settings(inference_model=Path("/models/qwen2.5-0.5b-q4.gguf"))
    assert served_model_id(gguf) == "qwen2.5-0.5b-q4"
    hf = Settings(inference_engine="transformers", inference_model=Path("/models/Llama-3.2-1B"))
    assert served_model_id(hf) == "Llama-3.2-1B"


def test_build_engines_from_settings(hf_model_dir: Path) -> None:
    gguf = Settings(inference_model=bundled_gguf(), inference_slots=1, inference_context=512)
    llama = build_engine(gguf)
    try:
        assert llama.model_id == served_model_id(gguf)
        assert llama.context_tokens == 512
    finally:
        llama.close()
    hf = Settings(
        inference_engine="transformers", inference_model=hf_model_dir, inference_context=256
    )
    engine = build_engine(hf)
    try:
        assert engine.model_id == hf_model_dir.name
        assert engine.context_tokens == 256
    finally:
        engine.close()
