"""The same wire format over the transformers engine (tiny random llama on CPU).

Random weights say nothing about quality; what is checked is that the server behaves the same
over both engines: streaming, usage, finish reasons, constrained tool calls and JSON, errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openai import OpenAI

from core.web.threaded import serve_in_thread
from inference.engines.hf.engine import TransformersEngine
from inference.server.app import create_inference_app

TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}, "days": {"type": "integer"}},
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def hf_server(hf_model_dir: Path) -> Iterator[tuple[str, str]]:
    engine = TransformersEngine(hf_model_dir, slots=4, context_tokens=1024, page_size=32)
    with serve_in_thread(create_inference_app(engine)) as url:
        yield url, engine.model_id


@pytest.fixture(scope="module")
def client(hf_server: tuple[str, str]) -> Iterator[OpenAI]:
    with OpenAI(base_url=hf_server[0] + "/v1", api_key="unused", max_retries=0) as c:
        yield c


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def test_completion_stream_and_usage(client: OpenAI, hf_server: tuple[str, str]) -> None:
    model = hf_server[1]
    assert model in {m.id for m in client.models.list()}
    whole = client.chat.completions.create(
        model=model, messages=_user("Hello"), max_tokens=6, temperature=0
    )
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage is not None
    assert whole.usage.completion_tokens <= 6
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=_user("Hello"),
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_tool_call_and_json_schema_always_valid(client: OpenAI, hf_server: tuple[str, str]) -> None:
    model = hf_server[1]
    for seed in range(5):
        reply = client.chat.completions.create(
            model=model,
            messages=_user("weather?"),
            tools=[TOOL],
            tool_choice="required",
            temperature=1.0,
            seed=seed,
            max_tokens=200,
        )
        call: Any = reply.choices[0].message.tool_calls
        assert reply.choices[0].finish_reason == "tool_calls"
        assert call[0].function.name == "get_weather"
        schema = TOOL["function"]["parameters"]
        Draft202012Validator(schema).validate(json.loads(call[0].function.arguments))
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=model,
        messages=_user("json"),
        temperature=1.0,
        seed=3,
        max_tokens=100,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert reply.choices[0].finish_reason == "stop"
    Draft202012Validator(schema).validate(json.loads(reply.choices[0].message.content or ""))


def test_errors_match_the_llama_engine(hf_server: tuple[str, str]) -> None:
    url, model = hf_server
    unknown = httpx.post(
        url + "/v1/chat/completions", timeout=30, json={"model": "nope", "messages": _user("x")}
    )
    assert unknown.status_code == 404
    too_long = httpx.post(
        url + "/v1/chat/completions",
        timeout=30,
        json={"model": model, "messages": _user("Paris " * 2000)},
    )
    assert too_long.status_code == 400
    assert "context window" in too_long.json()["error"]["message"]


def test_tokenize_counts_what_a_completion_reports(
    client: OpenAI, hf_server: tuple[str, str]
) -> None:
    url, model = hf_server
    messages: Any = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "The weather in Paris?"},
    ]
    counted = httpx.post(url + "/tokenize", timeout=30, json={"model": model, "messages": messages})
    assert counted.status_code == 200, counted.text
    reply = client.chat.completions.create(
        model=model, messages=messages, max_tokens=1, temperature=0
    )
    assert reply.usage is not None
    assert counted.json()["count"] == reply.usage.prompt_tokens
    assert counted.json()["max_model_len"] == 1024
    batch = httpx.post(
        url + "/tokenize",
        timeout=30,
        json={"model": model, "items": [{"messages": messages}, {"prompt": "Paris"}]},
    ).json()
    assert batch["items"][0]["tokens"] == counted.json()["tokens"]
    assert batch["items"][1]["count"] == len(batch["items"][1]["tokens"]) > 0
