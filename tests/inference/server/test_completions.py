"""Chat completions between the wire and an engine, over a scripted engine: what reaches the
engine, how finished text becomes `content` / `tool_calls` and a finish reason (the budget
cases a real model rarely hits on cue), the stream's chunks, and the engine's stream always
being closed. The same paths with the real model and the `openai` client are in test_app.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from core.errors import AgentmillError, UserError
from inference.engines.base import (
    EngineStats,
    Finished,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
)
from inference.errors import EngineFailed, OutputInvalid, Overloaded
from inference.server import completions
from inference.server.chat_template import CHATML, ChatTemplate
from inference.server.metrics import ServerMetrics
from inference.wire import ChatCompletionRequest

MODEL = "scripted-model"
ADD = {
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
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}
CALL = '{"name": "add", "arguments": {"a": 1, "b": 2}}'


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    """A json_schema response_format."""
    return {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}


class ScriptedEngine:
    """An engine that streams the given pieces, then the given end (a Finished or an
    exception); it records each request and whether its stream was closed."""

    model_id = MODEL
    context_tokens = 1024

    def __init__(
        self,
        pieces: Sequence[str] = (),
        end: Finished | AgentmillError | None = None,
        *,
        refuse: AgentmillError | None = None,
    ) -> None:
        self.pieces = list(pieces)
        self.end = end or Finished("stop", prompt_tokens=7, completion_tokens=len(self.pieces))
        self.refuse = refuse
        self.requests: list[GenerationRequest] = []
        self.closed = 0

    def tokenize(self, text: str) -> list[int]:
        """One token per word."""
        return list(range(len(text.split())))

    def chat_template(self) -> str | None:
        """None: the server falls back to ChatML."""
        return None

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """The script, as an engine's stream."""
        self.requests.append(request)
        if self.refuse is not None:
            raise self.refuse
        try:
            for piece in self.pieces:
                yield TextDelta(piece)
            if isinstance(self.end, AgentmillError):
                raise self.end
            yield self.end
        finally:
            self.closed += 1

    def stats(self) -> EngineStats:
        """Idle."""
        return EngineStats(
            waiting=0, running=0, slots=1, prompt_tokens_sent=0, prompt_tokens_evaluated=0
        )

    def close(self) -> None:
        """Nothing to free."""


def body(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCompletionRequest.model_validate({"model": MODEL, **fields})


def http_request(*, disconnected: bool = False) -> Request:
    """A request whose client is still there (or has gone away)."""

    async def receive() -> dict[str, Any]:
        if disconnected:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


def start(engine: ScriptedEngine, request: ChatCompletionRequest) -> completions.Completion:
    return asyncio.run(completions.start_completion(request, engine, ChatTemplate(CHATML)))


def answer(
    engine: ScriptedEngine, request: ChatCompletionRequest, *, disconnected: bool = False
) -> tuple[int, dict[str, Any], ServerMetrics]:
    """The non-streamed reply: status, JSON body, and the metrics it recorded."""
    metrics = ServerMetrics(engine)

    async def run() -> JSONResponse:
        completion = await completions.start_completion(request, engine, ChatTemplate(CHATML))
        return await completions.respond(
            completion, http_request(disconnected=disconnected), metrics
        )

    response = asyncio.run(run())
    return response.status_code, json.loads(bytes(response.body)), metrics


def chunks(
    engine: ScriptedEngine, request: ChatCompletionRequest, *, read: int | None = None
) -> list[Any]:
    """The streamed reply's events (JSON objects, or the string [DONE]); `read`: only the first
    that many, then the client goes away."""

    async def run() -> list[bytes]:
        completion = await completions.start_completion(request, engine, ChatTemplate(CHATML))
        response = completions.stream(completion, request, ServerMetrics(engine))
        assert isinstance(response, StreamingResponse)
        assert response.media_type == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        iterator = response.body_iterator
        received: list[bytes] = []
        async for part in iterator:
            assert isinstance(part, bytes)
            received.append(part)
            if read is not None and len(received) == read:
                await iterator.aclose()  # type: ignore[attr-defined]
                break
        return received

    events: list[Any] = []
    for part in asyncio.run(run()):
        assert part.startswith(b"data: "), part
        assert part.endswith(b"\n\n"), part
        data = part[len(b"data: ") : -2].decode()
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    return [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]


def finish_reasons(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["finish_reason"]
        for e in events
        if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"]
    ]


# -- what reaches the engine ------------------------------------------------------------


def test_the_prompt_and_sampling_reach_the_engine_and_the_first_event_is_waited_for() -> None:
    engine = ScriptedEngine(["Hel", "lo"])
    request = body(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        temperature=0.3,
        top_p=0.9,
        seed=11,
        max_tokens=50,
        max_completion_tokens=20,  # the newer name wins
        stop="END",
    )
    completion = start(engine, request)

    (sent,) = engine.requests
    assert sent.prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    params = sent.params
    assert (params.temperature, params.top_p, params.seed) == (0.3, 0.9, 11)
    assert (params.max_tokens, params.stop) == (20, ("END",))
    assert sent.constraint is None
    assert completion.first == TextDelta("Hel")
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert start(ScriptedEngine(["x"]), request).id != completion.id


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"response_format": {"type": "json_object"}}, "json"),
        ({"tools": [ADD], "tool_choice": "required"}, "tool_call"),
        (
            {"tools": [ADD], "tool_choice": {"type": "function", "function": {"name": "add"}}},
            "tool_call",
        ),
        ({"tools": [ADD]}, "tool_or_text"),
    ],
)
def test_the_request_shape_becomes_the_engines_constraint(
    fields: dict[str, Any], kind: str
) -> None:
    engine = ScriptedEngine(["{}"])
    start(engine, body(**fields))

    constraint = engine.requests[0].constraint
    assert constraint is not None
    assert constraint.kind == kind


def test_tools_are_hidden_when_tool_choice_is_none() -> None:
    engine = ScriptedEngine(["ok"])
    start(engine, body(tools=[ADD], tool_choice="none"))

    assert engine.requests[0].constraint is None
    assert '"add"' not in engine.requests[0].prompt


def test_messages_the_template_refuses_are_a_user_error_and_reach_no_engine() -> None:
    engine = ScriptedEngine(["x"])
    strict = ChatTemplate("{{ raise_exception('only one user message, please') }}")

    with pytest.raises(UserError) as caught:
        asyncio.run(completions.start_completion(body(), engine, strict))
    assert (caught.value.message, caught.value.param) == (
        "only one user message, please",
        "messages",
    )
    assert engine.requests == []


def test_an_engine_refusal_surfaces_from_start_before_any_output() -> None:
    engine = ScriptedEngine(refuse=Overloaded(3))

    with pytest.raises(Overloaded):
        start(engine, body())


# -- the whole reply ----------------------------------------------------------------------


def test_free_text_is_the_content_with_usage_and_metrics() -> None:
    done = Finished(
        "length",
        prompt_tokens=9,
        completion_tokens=3,
        cached_prompt_tokens=4,
        time_to_first_token_s=0.2,
    )
    engine = ScriptedEngine(["Hello", "", " there"], done)
    status, reply, metrics = answer(engine, body())

    assert status == 200
    assert (reply["object"], reply["model"]) == ("chat.completion", MODEL)
    (choice,) = reply["choices"]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello there"},
        "finish_reason": "length",  # free text cut by the budget says so
        "logprobs": None,
    }
    assert reply["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    assert engine.closed == 1
    value = metrics.registry.get_sample_value
    assert value("agentmill_inference_prompt_tokens_total") == 9
    assert value("agentmill_inference_completion_tokens_total") == 3


def test_a_required_call_is_a_tool_call_without_content() -> None:
    status, reply, _ = answer(
        ScriptedEngine([CALL[:10], CALL[10:]]), body(tools=[ADD], tool_choice="required")
    )

    assert status == 200
    (choice,) = reply["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert (call["index"], call["type"]) == (0, "function")
    assert call["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}


@pytest.mark.parametrize(
    ("pieces", "content", "calls"),
    [
        (["Four."], "Four.", 0),
        (["<tool_call>[", CALL, "]</tool_call>"], None, 1),
    ],
    ids=["text", "call"],
)
def test_with_tool_choice_auto_the_reply_is_text_or_a_call(
    pieces: list[str], content: str | None, calls: int
) -> None:
    _, reply, _ = answer(ScriptedEngine(pieces), body(tools=[ADD]))

    message = reply["choices"][0]["message"]
    assert message["content"] == content
    assert len(message.get("tool_calls", [])) == calls
    assert reply["choices"][0]["finish_reason"] == ("tool_calls" if calls else "stop")


CALL2 = '{"name": "add", "arguments": {"a": 3, "b": 4}}'


@pytest.mark.parametrize(
    ("fields", "pieces"),
    [
        ({}, ["<tool_call>[", CALL, ", ", CALL2, "]</tool_call>"]),
        ({"tool_choice": "required"}, ["[", CALL, ", ", CALL2, "]"]),
    ],
    ids=["auto", "required"],
)
def test_a_reply_holds_several_calls_when_the_request_allows_them(
    fields: dict[str, Any], pieces: list[str]
) -> None:
    request = body(tools=[ADD], parallel_tool_calls=True, **fields)
    _, reply, _ = answer(ScriptedEngine(pieces), request)

    calls = reply["choices"][0]["message"]["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1]
    assert [c["function"]["arguments"] for c in calls] == ['{"a": 1, "b": 2}', '{"a": 3, "b": 4}']
    assert calls[0]["id"] != calls[1]["id"]
    events = chunks(
        ScriptedEngine(pieces), body(stream=True, tools=[ADD], parallel_tool_calls=True, **fields)
    )
    (streamed,) = [d["tool_calls"] for d in deltas(events) if "tool_calls" in d]
    assert len(streamed) == 2
    assert finish_reasons(events) == ["tool_calls"]


def test_without_parallel_tool_calls_a_second_call_breaks_the_constraint() -> None:
    pieces = ["<tool_call>[", CALL, ", ", CALL2, "]</tool_call>"]
    with pytest.raises(OutputInvalid, match="too long"):  # the grammar never lets it be written
        answer(ScriptedEngine(pieces), body(tools=[ADD]))


def test_json_the_budget_closed_validly_is_a_stop_marked_shortened() -> None:
    done = Finished("length", prompt_tokens=5, completion_tokens=4)
    _, reply, _ = answer(
        ScriptedEngine(['{"name": ', '""}'], done), body(response_format=_json(PERSON))
    )

    (choice,) = reply["choices"]
    assert (choice["finish_reason"], choice["shortened"]) == ("stop", True)
    assert choice["message"]["content"] == '{"name": ""}'


def test_a_call_the_budget_closed_validly_is_a_tool_call_marked_shortened() -> None:
    done = Finished("length", prompt_tokens=5, completion_tokens=4)
    _, reply, _ = answer(ScriptedEngine([CALL], done), body(tools=[ADD], tool_choice="required"))

    (choice,) = reply["choices"]
    assert (choice["finish_reason"], choice["shortened"]) == ("tool_calls", True)


@pytest.mark.parametrize(
    ("fields", "pieces"),
    [
        ({"response_format": {"type": "json_object"}}, ['{"name": "Ad']),
        ({"tools": [ADD], "tool_choice": "required"}, ['{"name": "add", "argu']),
        ({"tools": [ADD]}, ["A long answer that ran"]),
    ],
    ids=["json", "required-call", "auto-text"],
)
def test_output_the_budget_cut_short_is_returned_as_text_with_length(
    fields: dict[str, Any], pieces: list[str]
) -> None:
    done = Finished("length", prompt_tokens=5, completion_tokens=8)
    _, reply, _ = answer(ScriptedEngine(pieces, done), body(**fields))

    (choice,) = reply["choices"]
    assert choice["finish_reason"] == "length"
    assert "shortened" not in choice
    assert choice["message"]["content"] == "".join(pieces)
    assert "tool_calls" not in choice["message"]


def test_a_finished_output_that_breaks_its_constraint_is_an_error_and_the_stream_is_closed() -> (
    None
):
    engine = ScriptedEngine(['{"name": 5}'])

    with pytest.raises(OutputInvalid, match="failed its constraint"):
        answer(engine, body(response_format=_json(PERSON)))
    assert engine.closed == 1


def test_a_client_that_went_away_gets_499_and_frees_the_engine() -> None:
    engine = ScriptedEngine(["word "] * 40)
    status, reply, metrics = answer(engine, body(), disconnected=True)

    assert status == 499
    assert reply["error"]["type"] == "cancelled"
    assert engine.closed == 1
    assert metrics.registry.get_sample_value("agentmill_inference_completion_tokens_total") == 0


# -- the stream ------------------------------------------------------------------------------


def test_a_text_stream_sends_the_role_each_piece_the_end_then_done() -> None:
    engine = ScriptedEngine(
        ["One", "", " two"], Finished("stop", prompt_tokens=3, completion_tokens=2)
    )
    events = chunks(engine, body(stream=True))

    assert deltas(events) == [
        {"role": "assistant", "content": ""},
        {"content": "One"},
        {"content": " two"},
        {},
    ]
    assert finish_reasons(events) == ["stop"]
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert len({e["id"] for e in events[:-1]}) == 1
    assert engine.closed == 1


def test_usage_comes_last_before_done_when_asked_for() -> None:
    engine = ScriptedEngine(
        ["Hi"], Finished("stop", prompt_tokens=3, completion_tokens=1, cached_prompt_tokens=2)
    )
    events = chunks(engine, body(stream=True, stream_options={"include_usage": True}))

    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "total_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 2},
    }
    assert not any("usage" in e for e in events[:-2])


def test_a_required_call_is_streamed_whole_once_complete() -> None:
    events = chunks(
        ScriptedEngine([CALL[:5], CALL[5:20], CALL[20:]]),
        body(stream=True, tools=[ADD], tool_choice="required"),
    )

    sent = deltas(events)
    assert sent[0] == {"role": "assistant", "content": ""}
    (calls,) = [d["tool_calls"] for d in sent if "tool_calls" in d]
    assert [c["function"] for c in calls] == [{"name": "add", "arguments": '{"a": 1, "b": 2}'}]
    assert not any(d.get("content") for d in sent)  # no fragment of the call leaked as text
    assert finish_reasons(events) == ["tool_calls"]


def test_with_auto_leading_blanks_are_held_until_text_or_a_call_shows() -> None:
    text_events = chunks(ScriptedEngine(["\n", " ", "Four", "."]), body(stream=True, tools=[ADD]))
    call_events = chunks(
        ScriptedEngine(["\n", "<tool_", "call>[", CALL, "]</tool_call>"]),
        body(stream=True, tools=[ADD]),
    )

    assert deltas(text_events)[1:] == [{"content": "\n Four"}, {"content": "."}, {}]
    assert finish_reasons(text_events) == ["stop"]
    sent = deltas(call_events)
    assert [sorted(d) for d in sent] == [["content", "role"], ["tool_calls"], []]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}
    assert finish_reasons(call_events) == ["tool_calls"]


def test_a_budget_closed_stream_marks_its_last_chunk_shortened() -> None:
    done = Finished("length", prompt_tokens=5, completion_tokens=4)
    events = chunks(
        ScriptedEngine(['{"name": ""}'], done), body(stream=True, response_format=_json(PERSON))
    )

    last = events[-2]["choices"][0]
    assert (last["finish_reason"], last["shortened"]) == ("stop", True)
    assert "shortened" not in events[1]["choices"][0]


@pytest.mark.parametrize(
    ("engine", "fields", "message"),
    [
        (
            ScriptedEngine(["Once", " upon"], EngineFailed("inference engine stopped")),
            {},
            "inference engine stopped",
        ),
        (
            ScriptedEngine(['{"name": 5}']),
            {"response_format": _json(PERSON)},
            "failed its constraint",
        ),
    ],
    ids=["engine-stopped", "invalid-output"],
)
def test_a_failure_after_the_headers_ends_the_stream_with_an_error_event(
    engine: ScriptedEngine, fields: dict[str, Any], message: str
) -> None:
    events = chunks(engine, body(stream=True, **fields))

    error = events[-1]
    assert error["error"]["type"] == "internal_error"
    assert message in error["error"]["message"]
    assert "[DONE]" not in events
    assert finish_reasons(events) == []
    assert engine.closed == 1


def test_a_client_leaving_mid_stream_closes_the_engines_stream() -> None:
    engine = ScriptedEngine(["word "] * 50)
    events = chunks(engine, body(stream=True), read=3)

    assert len(events) == 3
    assert engine.closed == 1
