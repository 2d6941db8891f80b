"""The server's wire format with the real `openai` client and the real bundled model."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from jsonschema import Draft202012Validator
from openai import OpenAI

from core.web.threaded import serve_in_thread
from inference.bundled import BUNDLED_MODEL_ID
from inference.engines.llama.engine import LlamaEngine
from inference.server.app import create_inference_app
from tests.inference.conftest import run_in_child
from tests.services import InferenceServer

MODEL = BUNDLED_MODEL_ID
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 40},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ADD: Any = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


CONTEXT = 2048  # per request, as the shared `inference_server` is configured


@pytest.fixture(scope="module")
def base_url(inference_server: InferenceServer) -> str:
    return inference_server.base


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0) as c:
        yield c


def _user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def test_models_lists_chat_and_embedding_models(client: OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert MODEL in ids
    assert "all-minilm-l6-v2" in ids


def test_completion_with_usage(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=_user("Say hello."), max_tokens=24, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_max_tokens_gives_length(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=_user("Write a long story about a dragon."),
        max_tokens=5,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 5


def test_stream_matches_non_stream_and_reports_usage(client: OpenAI) -> None:
    messages = _user("Name three colours.")
    whole = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=30, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=30,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stop_sequence_cuts_output(client: OpenAI) -> None:
    messages = _user("Count from one to twenty in words.")
    full = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=40, temperature=0
    )
    text = full.choices[0].message.content or ""
    assert len(text) > 12
    stop = text[8:12]
    cut = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=40, temperature=0, stop=[stop]
    )
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.index(stop)]


def test_seed_makes_sampling_reproducible(client: OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model=MODEL,
            messages=_user("Tell me a fact."),
            max_tokens=20,
            temperature=1.0,
            seed=seed,
        )
        return reply.choices[0].message.content or ""

    assert sample(7) == sample(7)
    assert len({sample(s) for s in range(4)}) > 1


def _validate_call(call: Any, tools: list[Any]) -> None:
    fn = call.function
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    assert fn.name in schemas
    Draft202012Validator(schemas[fn.name]).validate(json.loads(fn.arguments))


def test_required_tool_calls_always_parse_and_validate(client: OpenAI) -> None:
    prompts = [
        "What's the weather in Paris?",
        "Add 2 and 3.",
        "Is it raining in Tokyo?",
        "What is 10 plus 32?",
        "Weather in Lima in fahrenheit please",
        "Sum 7 and 8",
        "Do I need an umbrella in Oslo?",
        "Add minus four and nine",
        "How hot is Cairo?",
        "Compute 100 + 1",
    ]
    tools = [WEATHER, ADD]

    gate = asyncio.Semaphore(8)  # an agent fleet of 8; more would queue past the limit

    async def one(aclient: openai.AsyncOpenAI, i: int) -> Any:
        async with gate:
            reply = await aclient.chat.completions.create(
                model=MODEL,
                messages=_user(prompts[i % len(prompts)]),
                tools=tools,
                tool_choice="required",
                temperature=0.8,
                seed=i,
                max_tokens=80,
            )
        return reply.choices[0]

    async def run_all(base: str) -> list[Any]:
        async with openai.AsyncOpenAI(base_url=base, api_key="unused", max_retries=0) as aclient:
            return await asyncio.gather(*(one(aclient, i) for i in range(100)))

    choices = asyncio.run(run_all(str(client.base_url)))
    for choice in choices:
        assert choice.finish_reason == "tool_calls"
        calls = choice.message.tool_calls
        assert calls is not None
        assert len(calls) == 1
        assert calls[0].id.startswith("call_")
        _validate_call(calls[0], tools)


def test_with_parallel_tool_calls_every_call_of_a_reply_parses_and_validates(
    client: OpenAI,
) -> None:
    # The bundled 135M model seldom writes a second call (bench/parallel_tool_calls.py); what
    # is checked here is the format: a list of 1-4 valid calls under either choice, sampled.
    tools = [WEATHER, ADD]
    prompts = ["Weather in Paris and in Rome?", "Add 2 and 3, and add 4 and 5.", "Hi there"]
    for i in range(12):
        choice: Literal["required", "auto"] = "required" if i % 2 == 0 else "auto"
        reply = client.chat.completions.create(
            model=MODEL,
            messages=_user(prompts[i % len(prompts)]),
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=True,
            temperature=0.9,
            seed=i,
            max_tokens=120,
        )
        made = reply.choices[0].message.tool_calls or []
        assert 1 <= len(made) <= 4 or (choice == "auto" and not made), reply
        assert len({c.id for c in made}) == len(made)
        for call in made:
            _validate_call(call, tools)


def test_named_tool_choice_calls_that_function(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=_user("What's the weather in Rome?"),
        tools=[WEATHER, ADD],
        tool_choice={"type": "function", "function": {"name": "add"}},
        temperature=0,
    )
    calls: Any = reply.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "add"
    _validate_call(calls[0], [ADD])


def test_streamed_tool_call(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=_user("Weather in Berlin?"),
            tools=[WEATHER],
            tool_choice="required",
            temperature=0,
            stream=True,
        )
    )
    deltas = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert len(deltas) == 1
    _validate_call(deltas[0][0], [WEATHER])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_auto_tool_choice_is_text_or_a_valid_call(client: OpenAI) -> None:
    for i, prompt in enumerate(["Weather in Madrid?", "Hi, how are you?", "Add 4 and 5"]):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=_user(prompt),
            tools=[WEATHER, ADD],
            tool_choice="auto",
            temperature=0.7,
            seed=i,
            max_tokens=60,
        )
        choice = reply.choices[0]
        if choice.message.tool_calls:
            assert choice.finish_reason == "tool_calls"
            _validate_call(choice.message.tool_calls[0], [WEATHER, ADD])
        else:
            assert choice.message.content is not None
            assert not choice.message.content.startswith("<")


def test_tool_results_round_trip(client: OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris", "unit": "celsius"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21, "sky": "clear"}'},
    ]
    reply = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=30,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert not reply.choices[0].message.tool_calls


def test_json_object_and_json_schema(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=_user("Describe a cat as JSON."),
        temperature=0.7,
        seed=1,
        response_format={"type": "json_object"},
        max_tokens=120,
    )
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 30}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    for seed in range(5):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=_user("Invent a person."),
            temperature=1.0,
            seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
            max_tokens=60,
        )
        assert reply.choices[0].finish_reason == "stop"
        Draft202012Validator(schema).validate(json.loads(reply.choices[0].message.content or ""))


def test_prefix_reuse_across_agent_steps(client: OpenAI) -> None:
    messages: Any = [
        {"role": "system", "content": "You are a terse assistant. " * 20},
        {"role": "user", "content": "Give me one word."},
    ]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=8, temperature=0
    )
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "Another one."},
    ]
    second = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=8, temperature=0
    )
    assert second.usage is not None
    details = second.usage.prompt_tokens_details
    assert details is not None
    assert details.cached_tokens is not None
    assert details.cached_tokens >= 0.6 * second.usage.prompt_tokens


def test_embeddings(client: OpenAI) -> None:
    result = client.embeddings.create(model="all-minilm-l6-v2", input=["a cat", "a dog", "tax law"])
    vectors = [d.embedding for d in result.data]
    assert [len(v) for v in vectors] == [384, 384, 384]
    dot = [sum(a * b for a, b in zip(vectors[0], v, strict=True)) for v in vectors]
    assert dot[1] > dot[2]
    assert result.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "nope"),
        ({"model": MODEL, "messages": []}, 422, "messages"),
        (
            {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]},
            422,
            "messages.0.role",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}
                ],
            },
            422,
            "tools.0.function.parameters",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {"type": "object", "minProperties": "a"},
                    },
                },
            },
            422,
            "response_format",
        ),
        (
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": "required",
            },
            422,
            "tool_choice requires tools",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "temperature": 9},
            422,
            "temperature",
        ),
    ],
)
def test_bad_requests(base_url: str, body: dict[str, object], status: int, fragment: str) -> None:
    response = httpx.post(base_url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] or fragment == error.get("param")


def test_prompt_too_long_names_both_counts(base_url: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "word " * 3000}]}
    response = httpx.post(base_url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert str(CONTEXT) in message
    assert "prompt is" in message


CONVERSATIONS: list[Any] = [
    _user("Say hello."),
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Héllo wörld, ça va? ✓ 日本"},
        {"role": "assistant", "content": "Fine."},
        {"role": "user", "content": "And the weather?"},
    ],
    [  # tool traffic, rendered back into the prompt as the completion renders it
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ],
]


def _tokenize(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(base_url + "/tokenize", json=body, timeout=30)
    assert response.status_code == 200, response.text
    counted: dict[str, Any] = response.json()
    return counted


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_tokenize_counts_what_a_completion_reports_as_prompt_tokens(
    base_url: str, client: OpenAI, messages: Any
) -> None:
    counted = _tokenize(base_url, {"model": MODEL, "messages": messages})
    reply = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=1, temperature=0
    )
    assert reply.usage is not None
    assert counted["count"] == reply.usage.prompt_tokens
    assert len(counted["tokens"]) == counted["count"]
    assert counted["max_model_len"] == CONTEXT


def test_tokenize_text_and_the_generation_prompt(base_url: str) -> None:
    text = _tokenize(base_url, {"prompt": "Hello world"})  # no model: the served one
    assert 0 < text["count"] == len(text["tokens"]) < 5
    special = _tokenize(base_url, {"model": MODEL, "prompt": "<|im_start|>"})
    assert special["count"] == 1  # special tokens are parsed, as in a rendered prompt
    chat = {"model": MODEL, "messages": _user("Hi")}
    opened = _tokenize(base_url, chat)
    closed = _tokenize(base_url, {**chat, "add_generation_prompt": False})
    assert opened["tokens"][: closed["count"]] == closed["tokens"]
    assert closed["count"] < opened["count"]  # `<|im_start|>assistant\n` is counted once


def test_tokenize_items_count_each_prompt_in_one_request(base_url: str) -> None:
    singles = [_tokenize(base_url, {"model": MODEL, "messages": m}) for m in CONVERSATIONS]
    items = [{"messages": m} for m in CONVERSATIONS] + [{"prompt": "Hello world"}]
    batch = _tokenize(base_url, {"model": MODEL, "items": items})
    text = _tokenize(base_url, {"model": MODEL, "prompt": "Hello world"})
    assert [i["count"] for i in batch["items"]] == [s["count"] for s in [*singles, text]]
    assert [i["tokens"] for i in batch["items"]] == [s["tokens"] for s in [*singles, text]]
    assert batch["count"] == sum(i["count"] for i in batch["items"])
    assert batch["max_model_len"] == CONTEXT
    assert "tokens" not in batch


_HI: Any = _user("Hi")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "nope", "messages": _HI}, 404, "nope"),
        ({"model": MODEL}, 422, "exactly one of messages, prompt or items"),
        ({"model": MODEL, "messages": _HI, "prompt": "x"}, 422, "exactly one"),
        ({"model": MODEL, "prompt": "x", "items": [{"prompt": "y"}]}, 422, "exactly one"),
        ({"model": MODEL, "messages": []}, 422, "messages"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, 422, "role"),
        ({"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, 422, "tool_call_id"),
        ({"model": MODEL, "prompt": 5}, 422, "prompt"),
        ({"model": MODEL, "items": []}, 422, "items"),
        ({"model": MODEL, "items": [{}]}, 422, "exactly one of messages or prompt"),
        ({"model": MODEL, "items": [{"prompt": "x", "messages": _HI}]}, 422, "exactly one"),
        ({"model": MODEL, "items": [{"prompt": "x"}] * 2049}, 422, "items"),
        ({"model": MODEL, "messages": _HI, "tools": [WEATHER]}, 422, "does not render tools"),
    ],
)
def test_tokenize_refuses_bad_bodies(
    base_url: str, body: dict[str, object], status: int, fragment: str
) -> None:
    response = httpx.post(base_url + "/tokenize", json=body, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"] or fragment in (error.get("param") or ""), error


def test_tokenize_refuses_a_body_that_is_not_json(base_url: str) -> None:
    response = httpx.post(
        base_url + "/tokenize", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"


def _gauge(base_url: str, name: str) -> float:
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f"agentmill_inference_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} gauge")


def _running(base_url: str) -> float:
    return _gauge(base_url, "running")


def test_disconnect_frees_the_slot(base_url: str) -> None:
    body = {
        "model": MODEL,
        "messages": _user("Write a very long essay."),
        "stream": True,
        "max_tokens": 1500,
    }
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, timeout=30) as r:
        lines = r.iter_lines()
        for _ in range(5):
            next(lines)
        assert _running(base_url) == 1
    deadline = time.monotonic() + 5
    while _running(base_url) != 0:
        assert time.monotonic() < deadline, "slot still busy after the client left"
        time.sleep(0.05)


def test_metrics_count_requests_and_tokens(base_url: str, client: OpenAI) -> None:
    client.chat.completions.create(model=MODEL, messages=_user("hi"), max_tokens=3)
    text = httpx.get(base_url + "/metrics", timeout=10).text
    for name in (
        "agentmill_inference_requests_total",
        "agentmill_inference_completion_tokens_total",
        "agentmill_inference_time_to_first_token_seconds_bucket",
        "agentmill_inference_decode_tokens_per_second_bucket",
        "agentmill_inference_queue_depth",
        "agentmill_inference_prompt_tokens_evaluated",
    ):
        assert name in text


# A generation that cannot end early: the schema keeps EOS out until the string holds 1500
# characters (hundreds of tokens, seconds of decoding), so the first request is still running
# when the third arrives, on any machine.
_LONG_ANSWER = {
    "type": "json_schema",
    "json_schema": {
        "name": "poem",
        "schema": {
            "type": "object",
            "properties": {"poem": {"type": "string", "minLength": 1500}},
            "required": ["poem"],
        },
    },
}


def _wait_gauge(url: str, name: str, value: float) -> None:
    deadline = time.monotonic() + 30
    while _gauge(url, name) != value:
        assert time.monotonic() < deadline, f"{name} never reached {value}"
        time.sleep(0.02)


def test_full_queue_gets_429(tmp_path: Path) -> None:
    server = InferenceServer(
        tmp_path,
        tmp_path,
        inference_slots="1",
        inference_context="1024",
        inference_max_waiting="1",
    )
    try:
        url = server.base
        body = {
            "model": MODEL,
            "messages": _user("Write a long poem."),
            "max_tokens": 700,
            "response_format": _LONG_ANSWER,
        }

        async def burst() -> list[int]:
            async with httpx.AsyncClient(timeout=120) as http:
                first = asyncio.create_task(http.post(url + "/v1/chat/completions", json=body))
                await asyncio.to_thread(_wait_gauge, url, "running", 1)
                second = asyncio.create_task(http.post(url + "/v1/chat/completions", json=body))
                await asyncio.to_thread(_wait_gauge, url, "queue_depth", 1)
                third = await http.post(url + "/v1/chat/completions", json=body)
                assert third.headers.get("retry-after")
                assert third.json()["error"]["type"] == "rate_limited"
                return [(await first).status_code, (await second).status_code, third.status_code]

        assert asyncio.run(burst()) == [200, 200, 429]
        server.check_alive()
    finally:
        server.stop()


def _engine_stops_mid_stream() -> None:
    # In a child process (run_in_child): it runs llama.cpp in this interpreter.
    engine = LlamaEngine(slots=1, context_per_slot=512)
    with serve_in_thread(create_inference_app(engine)) as url:
        body = {
            "model": MODEL,
            "messages": _user("Write a long poem."),
            "stream": True,
            "max_tokens": 400,
        }
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
            lines = r.iter_lines()
            for _ in range(4):
                next(lines)
            engine.close()
            rest = [line for line in lines if line]
    assert rest
    assert '"error"' in rest[-1]
    assert "engine stopped" in rest[-1]


def test_engine_failure_mid_stream_is_reported_in_the_stream() -> None:
    run_in_child(_engine_stops_mid_stream)
