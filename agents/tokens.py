"""Token counts and window sizes for the model aliases of the router.

Counts come from litellm's counter: the model's own tokenizer when litellm knows the model,
else a GPT tokenizer. That estimate can be off for other vocabularies, so the loop keeps a
safety margin (`WINDOW_MARGIN`) below the window.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import litellm

from core.config import Settings
from inference.client import LOCAL_ALIAS

DEFAULT_WINDOW = 8192
WINDOW_MARGIN = 0.85


def count_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    """Tokens of `messages` for the litellm model string `model`."""
    plain = [
        {"role": m["role"], "content": _text(m)} for m in messages
    ]  # tool-call fields confuse some of litellm's counters; their text is what costs
    return int(litellm.token_counter(model=model, messages=plain))


def _text(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    if message.get("tool_calls"):
        parts.append(json.dumps(message["tool_calls"]))
    return "\n".join(parts)


def litellm_model(settings: Settings, alias: str) -> str:
    """The litellm model string behind an alias (the local model counts as gpt-3.5-turbo)."""
    route = settings.models.get(alias)
    return route.model if route is not None else "gpt-3.5-turbo"


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
    if route is not None and route.context_window is not None:
        return route.context_window
    return _known_window(litellm_model(settings, alias)) or DEFAULT_WINDOW


def prompt_budget(settings: Settings, alias: str) -> int:
    """Tokens the loop may fill with context, leaving room for the answer and the margin."""
    window = context_window(settings, alias)
    return max(256, int(window * WINDOW_MARGIN) - settings.agent_max_output_tokens)
