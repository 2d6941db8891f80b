"""ScriptedModel: answers in order, raises scripted errors, records requests, fails loudly."""

from __future__ import annotations

import asyncio
import json

import pytest

from core.errors import AgentmillError
from inference.errors import UnknownModel
from inference.model_client import ChatRequest, ChatResult, ModelClient
from inference.testing import ScriptedModel, ScriptExhausted, text_reply, tool_calls_reply


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
