"""The litellm router client against the real bundled server: aliases, tools, usage, fallbacks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from core.config import Settings
from core.web.threaded import free_port
from inference.bundled import BUNDLED_MODEL_ID
from inference.client.model_client import ChatRequest
from inference.client.router import RouterClient
from inference.errors import UnknownModel
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


def test_local_counts_are_the_server_s_and_match_a_completion_s_prompt_tokens(
    local_url: str,
) -> None:
    client = _client(local_url)
    short = [{"role": "user", "content": "Hi!"}]
    longer = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three colours, then three fruits."},
    ]
    longest = [*longer, {"role": "assistant", "content": "Red, blue, green; pear, fig, kiwi."}]
    counts = asyncio.run(client.count_tokens("local", [short, longer, longest]))
    replies = [
        asyncio.run(client.complete(ChatRequest(model="local", messages=m, max_tokens=1)))
        for m in (short, longer, longest)
    ]
    assert counts == [r.usage.prompt_tokens for r in replies]
    assert counts[1] < counts[2]
    assert asyncio.run(client.count_tokens("local", [])) == []


def test_other_aliases_count_with_litellm_tool_calls_included(local_url: str) -> None:
    client = _client(local_url, {"gpt": {"model": "gpt-3.5-turbo", "api_key": "unused"}})
    call = {"role": "assistant", "content": None, "tool_calls": [{"name": "calculator"}]}
    short, long, bare, called = asyncio.run(
        client.count_tokens(
            "gpt",
            [
                [{"role": "user", "content": "hi"}],
                [{"role": "user", "content": "hi " * 200}],
                [{"role": "assistant", "content": None}],
                [call],
            ],
        )
    )
    assert 0 < short < long
    assert called > bare


def test_counting_for_an_unknown_alias_is_refused(local_url: str) -> None:
    with pytest.raises(UnknownModel, match="local"):
        asyncio.run(_client(local_url).count_tokens("gpt-unknown", [[]]))
