"""The litellm router client against the real bundled server: aliases, tools, usage, fallbacks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from core.config import Settings
from core.web.threaded import free_port
from inference.bundled import BUNDLED_MODEL_ID
from inference.client import RouterClient
from inference.errors import UnknownModel
from inference.model_client import ChatRequest
from tests.services import InferenceServer

ADD: Any = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


@pytest.fixture(scope="module")
def local_url(inference_server: InferenceServer) -> str:
    return inference_server.base + "/v1"


def _client(local_url: str, models: dict[str, Any] | None = None) -> RouterClient:
    settings = Settings.model_validate({"inference_url": local_url, "models": models or {}})
    return RouterClient(settings, BUNDLED_MODEL_ID)


def test_local_alias_returns_text_and_usage(local_url: str) -> None:
    result = asyncio.run(
        _client(local_url).complete(
            ChatRequest(model="local", messages=[{"role": "user", "content": "Hi!"}], max_tokens=8)
        )
    )
    assert result.content
    assert result.model == "local"
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 8
    assert result.usage.cost_usd == 0.0


def test_tool_calls_come_back_parsed(local_url: str) -> None:
    result = asyncio.run(
        _client(local_url).complete(
            ChatRequest(
                model="local",
                messages=[{"role": "user", "content": "Add 2 and 3"}],
                tools=[ADD],
                tool_choice="required",
                temperature=0,
            )
        )
    )
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].name == "add"
    assert set(json.loads(result.tool_calls[0].arguments)) == {"a", "b"}


def test_unknown_alias_is_refused(local_url: str) -> None:
    request = ChatRequest(model="gpt-unknown", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(UnknownModel, match="local"):
        asyncio.run(_client(local_url).complete(request))


def test_fallback_to_local_when_the_primary_is_down(local_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    models = {
        "primary": {
            "model": f"openai/{BUNDLED_MODEL_ID}",
            "api_base": dead,
            "api_key": "x",
            "fallbacks": ["local"],
            "max_retries": 0,
            "timeout_s": 5,
        }
    }
    result = asyncio.run(
        _client(local_url, models).complete(
            ChatRequest(model="primary", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        )
    )
    assert result.content is not None
    assert result.usage.completion_tokens > 0
