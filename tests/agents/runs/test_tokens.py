"""Window sizes per router alias: the local model's window comes from the settings, a
configured route's own figure wins, then litellm's model table, an unknown model or alias gets
the default, and the prompt budget keeps room for the answer. (Counting is the model client's:
tests/inference/client.)"""

from __future__ import annotations

from pathlib import Path

from agents.runs.tokens import (
    DEFAULT_WINDOW,
    WINDOW_MARGIN,
    context_window,
    prompt_budget,
)
from core.config import ModelRoute, Settings


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(home=tmp_path / "home", **extra)  # type: ignore[arg-type]


def test_the_local_window_is_the_inference_context(tmp_path: Path) -> None:
    settings = _settings(tmp_path, inference_context=4096)
    assert context_window(settings, "local") == 4096


def test_a_route_s_own_window_wins_and_an_unknown_model_gets_the_default(tmp_path: Path) -> None:
    routes = {
        "big": ModelRoute(model="openai/some-model", context_window=32_000),
        "odd": ModelRoute(model="nowhere/unheard-of-model-xyz"),
        "known": ModelRoute(model="gpt-3.5-turbo"),
    }
    settings = _settings(tmp_path, models=routes)
    assert context_window(settings, "big") == 32_000
    assert context_window(settings, "odd") == DEFAULT_WINDOW
    assert context_window(settings, "not-configured") == DEFAULT_WINDOW
    assert context_window(settings, "known") == 16_385  # litellm's model table (metadata)


def test_the_budget_leaves_the_margin_and_the_answer_and_never_drops_below_256(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, inference_context=8192, agent_max_output_tokens=512)
    assert prompt_budget(settings, "local") == int(8192 * WINDOW_MARGIN) - 512
    tiny = _settings(tmp_path, inference_context=512, agent_max_output_tokens=512)
    assert prompt_budget(tiny, "local") == 256
