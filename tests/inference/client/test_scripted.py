"""ScriptedModel: answers in order, raises scripted errors, records requests, fails loudly, and
counts tokens by its documented rule."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.errors import AgentmillError
from inference.client.model_client import ChatRequest, ChatResult, ModelClient, ModelUnavailable
from inference.client.scripted import (
    ScriptedModel,
    ScriptExhausted,
    scripted_tokens,
    text_reply,
    tool_calls_reply,
)
from inference.errors import UnknownModel


def _request(text: str) -> ChatRequest:
    return ChatRequest(model="local", messages=[{"role": "user", "content": text}])


def test_answers_in_script_order_and_counts_what_is_left() -> None:
    model = ScriptedModel([text_reply("one"), text_reply("two")])
    assert model.remaining == 2
    first = asyncio.run(model.complete(_request("a")))
    second = asyncio.run(model.complete(_request("b")))
    assert (first.content, second.content, model.remaining) == ("one", "two", 0)


def test_records_a_copy_of_every_request() -> None:
    model = ScriptedModel([text_reply("ok")])
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    request = ChatRequest(
        model="local", messages=[{"role": "user", "content": "hi"}], tools=tools, seed=7
    )
    asyncio.run(model.complete(request))
    request.messages.append({"role": "assistant", "content": "later"})
    request.messages[0]["content"] = "changed"
    tools.clear()
    (recorded,) = model.requests
    assert recorded.messages == [{"role": "user", "content": "hi"}]
    assert recorded.tools == [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert (recorded.model, recorded.seed) == ("local", 7)


def test_raises_scripted_exceptions_after_recording_the_request() -> None:
    model = ScriptedModel([UnknownModel("big", ["local"]), text_reply("recovered")])
    with pytest.raises(UnknownModel):
        asyncio.run(model.complete(_request("first")))
    assert asyncio.run(model.complete(_request("second"))).content == "recovered"
    assert [r.messages[0]["content"] for r in model.requests] == ["first", "second"]


def test_an_exhausted_script_fails_loudly() -> None:
    model = ScriptedModel([text_reply("only")])
    asyncio.run(model.complete(_request("a")))
    with pytest.raises(ScriptExhausted) as caught:
        asyncio.run(model.complete(_request("one too many")))
    error = caught.value
    assert isinstance(error, AssertionError)
    assert not isinstance(error, AgentmillError)  # `except AgentmillError` cannot swallow it
    assert error.calls == 2
    assert "call 2 has no scripted answer (the script held 1)" in str(error)
    assert "one too many" in str(error)
    assert len(model.requests) == 2


def test_an_empty_script_fails_on_the_first_call() -> None:
    with pytest.raises(ScriptExhausted, match="call 1 has no scripted answer"):
        asyncio.run(ScriptedModel([]).complete(ChatRequest(model="local", messages=[])))


def test_reply_helpers() -> None:
    assert text_reply("hi") == ChatResult(content="hi", finish_reason="stop", model="scripted")
    reply = tool_calls_reply(("add", {"a": 1}), ("raw", '{"broken": '))
    assert reply.content is None
    assert reply.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in reply.tool_calls] == [("call_1", "add"), ("call_2", "raw")]
    assert json.loads(reply.tool_calls[0].arguments) == {"a": 1}
    assert reply.tool_calls[1].arguments == '{"broken": '


def test_it_is_a_model_client() -> None:
    client: ModelClient = ScriptedModel([text_reply("typed")])  # mypy checks the protocol
    assert asyncio.run(client.complete(_request("x"))).content == "typed"


def test_token_counts_follow_the_documented_rule_and_add_up() -> None:
    hello = {"role": "user", "content": "Hello!"}  # 6 characters: 2 tokens, 4 for the message
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}  # 13 as JSON
    assert scripted_tokens([]) == 2
    assert scripted_tokens([hello]) == 2 + 4 + 2
    assert scripted_tokens([hello, call]) == 2 + 4 + 2 + 4 + 4
    both = scripted_tokens([hello, call])
    assert both == scripted_tokens([hello]) + scripted_tokens([call]) - scripted_tokens([])


def test_count_tokens_records_each_call_and_raises_scripted_failures_first() -> None:
    model = ScriptedModel([], count_failures=[ModelUnavailable("timeout")])
    prompts = [[{"role": "user", "content": "Hello!"}], [{"role": "user", "content": "x" * 40}]]
    with pytest.raises(ModelUnavailable, match="did not answer in time"):
        asyncio.run(model.count_tokens("local", prompts))
    assert asyncio.run(model.count_tokens("local", prompts)) == [8, 16]
    sent = [[{"role": "user", "content": "Hello!"}], [{"role": "user", "content": "x" * 40}]]
    prompts[0][0]["content"] = "changed later"
    assert model.counted == [("local", sent), ("local", sent)]
    assert model.remaining == 0  # counting uses none of the scripted answers
