"""Window sizes and prompt budgets for the model aliases of the router.

Counting is the model client's (`ModelClient.count_tokens`: the bundled model's own tokenizer
for `local`). The window of a configured route that names none comes from litellm's model
table: window metadata, no counting. Counts of models litellm does not know are a GPT
tokenizer's estimate, so the loop keeps a safety margin (`WINDOW_MARGIN`) below the window.
"""

from __future__ import annotations

from functools import lru_cache

import litellm

from core.config import Settings
from inference.client.router import LOCAL_ALIAS

DEFAULT_WINDOW = 8192
WINDOW_MARGIN = 0.85


@lru_cache(maxsize=64)
def _known_window(model: str) -> int | None:
    try:
        info = litellm.get_model_info(model)
    except Exception:  # litellm raises for models it has no entry for
        return None
    window = info.get("max_input_tokens") or info.get("max_tokens")
    return int(window) if window else None


def context_window(settings: Settings, alias: str) -> int:
    """Tokens the alias's model accepts in one request (prompt and answer)."""
    if alias == LOCAL_ALIAS:
        return settings.inference_context
    route = settings.models.get(alias)
    if route is None:
        return DEFAULT_WINDOW
    if route.context_window is not None:
        return route.context_window
    return _known_window(route.model) or DEFAULT_WINDOW


def prompt_budget(settings: Settings, alias: str) -> int:
    """Tokens the loop may fill with context, leaving room for the answer and the margin."""
    window = context_window(settings, alias)
    return max(256, int(window * WINDOW_MARGIN) - settings.agent_max_output_tokens)
