"""POST /v1/chat/completions: request -> engine -> OpenAI response or SSE stream."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from core.errors import AgentmillError, UserError
from inference.decoding.constraints import (
    OutputConstraint,
    ParsedOutput,
    ParsedToolCall,
    constraint_for,
    is_tool_call_start,
    offered_tools,
    parse_output,
)
from inference.engines.base import (
    Engine,
    Finished,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
)
from inference.errors import OutputInvalid, PromptError, SchemaError
from inference.server.chat_template import ChatTemplate
from inference.server.metrics import ServerMetrics
from inference.server.telemetry import record_generation
from inference.wire import ChatCompletionRequest

log = logging.getLogger(__name__)


@dataclass
class Completion:
    """Everything needed to answer one chat completion."""

    id: str
    created: int
    model: str
    constraint: OutputConstraint | None
    events: AsyncIterator[GenerationEvent]
    first: GenerationEvent
    started: float


async def start_completion(
    body: ChatCompletionRequest, engine: Engine, template: ChatTemplate
) -> Completion:
    """Render the prompt and start generating; raises before any output on bad input."""
    constraint = constraint_for(body)
    try:
        prompt = template.render(body.messages, offered_tools(body), constraint)
    except PromptError as exc:
        raise UserError(str(exc), param="messages") from None
    params = SamplingParams(
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        max_tokens=body.token_limit(),
        stop=tuple(body.stop_list()),
    )
    started = time.monotonic()
    events = aiter(engine.generate(GenerationRequest(prompt, params, constraint)))
    first = await anext(events)  # Overloaded / PromptTooLong surface here, as HTTP errors
    return Completion(
        id="chatcmpl-" + secrets.token_hex(12),
        created=int(time.time()),
        model=body.model,
        constraint=constraint,
        events=events,
        first=first,
        started=started,
    )


def _finished(
    completion: Completion, done: Finished, metrics: ServerMetrics, *, streamed: bool
) -> None:
    """Account for a finished generation: its metrics and its span."""
    metrics.observe_completion(
        done.prompt_tokens,
        done.completion_tokens,
        done.time_to_first_token_s,
        time.monotonic() - completion.started,
    )
    kind = completion.constraint.kind if completion.constraint is not None else None
    record_generation(completion.model, completion.started, done, kind, streamed)


def _usage(done: Finished) -> dict[str, Any]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": done.cached_prompt_tokens},
    }


def _tool_calls_json(calls: list[ParsedToolCall]) -> list[dict[str, Any]]:
    return [
        {
            "index": i,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for i, call in enumerate(calls)
    ]


@dataclass(frozen=True)
class _Reading:
    """The output as OpenAI fields, with its finish reason."""

    parsed: ParsedOutput
    finish_reason: str
    shortened: bool = False  # closed early by the server to fit max_tokens


def _read(text: str, done: Finished, constraint: OutputConstraint | None) -> _Reading:
    if done.reason == "length" and constraint is not None:
        # The budget ended it. When the shortest valid output fit, the engine closed it
        # validly (a shortened but whole call or document); otherwise the partial output is
        # returned as text, as OpenAI does.
        try:
            parsed = parse_output(text, constraint)
        except SchemaError:
            return _Reading(ParsedOutput(text, []), "length")
        if constraint.kind == "tool_or_text" and not parsed.tool_calls:
            return _Reading(parsed, "length")  # plain text cut at the budget
        return _Reading(parsed, "tool_calls" if parsed.tool_calls else "stop", shortened=True)
    try:
        parsed = parse_output(text, constraint)
    except SchemaError as exc:
        raise OutputInvalid(f"model output failed its constraint: {exc}") from None
    return _Reading(parsed, "tool_calls" if parsed.tool_calls else done.reason)


def _choice_extra(reading: _Reading) -> dict[str, Any]:
    # An extra choice member (the openai client keeps unknown fields: `choice.shortened`).
    return {"shortened": True} if reading.shortened else {}


async def _drain(completion: Completion, request: Request) -> tuple[str, Finished | None]:
    parts: list[str] = []
    event: GenerationEvent | None = completion.first
    count = 0
    while event is not None:
        if isinstance(event, Finished):
            return "".join(parts), event
        parts.append(event.text)
        count += 1
        if count % 16 == 0 and await request.is_disconnected():
            return "".join(parts), None
        event = await anext(completion.events, None)
    return "".join(parts), None


async def respond(completion: Completion, request: Request, metrics: ServerMetrics) -> JSONResponse:
    """Collect the whole generation into one chat.completion object."""
    try:
        text, done = await _drain(completion, request)
    finally:
        await completion.events.aclose()  # type: ignore[attr-defined]
    if done is None:
        return JSONResponse({"error": {"type": "cancelled", "message": "client went away"}}, 499)
    _finished(completion, done, metrics, streamed=False)
    reading = _read(text, done, completion.constraint)
    parsed = reading.parsed
    message: dict[str, Any] = {"role": "assistant", "content": parsed.content}
    if parsed.tool_calls:
        message["tool_calls"] = _tool_calls_json(parsed.tool_calls)
    return JSONResponse(
        {
            "id": completion.id,
            "object": "chat.completion",
            "created": completion.created,
            "model": completion.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reading.finish_reason,
                    "logprobs": None,
                    **_choice_extra(reading),
                }
            ],
            "usage": _usage(done),
        }
    )


class _Chunks:
    """Builds the chat.completion.chunk objects of one stream."""

    def __init__(self, completion: Completion) -> None:
        self.c = completion

    def event(
        self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        body = {
            "id": self.c.id,
            "object": "chat.completion.chunk",
            "created": self.c.created,
            "model": self.c.model,
            "choices": [{**choice, **(extra or {})}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def error(self, exc: AgentmillError) -> bytes:
        body = {"error": {"type": "internal_error", "message": str(exc)}}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def usage(self, done: Finished) -> bytes:
        body = {
            "id": self.c.id,
            "object": "chat.completion.chunk",
            "created": self.c.created,
            "model": self.c.model,
            "choices": [],
            "usage": _usage(done),
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _stream_body(
    completion: Completion, include_usage: bool, metrics: ServerMetrics
) -> AsyncIterator[bytes]:
    chunks = _Chunks(completion)
    constraint = completion.constraint
    # Tool calls are sent whole once complete; JSON and text stream as they come.
    buffer_all = constraint is not None and constraint.kind == "tool_call"
    undecided = constraint is not None and constraint.kind == "tool_or_text"
    held: list[str] = []
    written: list[str] = []  # everything generated, to read the finished output
    try:
        yield chunks.event({"role": "assistant", "content": ""})
        event: GenerationEvent | None = completion.first
        while event is not None and not isinstance(event, Finished):
            written.append(event.text)
            if buffer_all:
                held.append(event.text)
            elif undecided:
                held.append(event.text)
                so_far = "".join(held)
                if so_far.strip():
                    undecided = False
                    buffer_all = is_tool_call_start(so_far)
                    if not buffer_all:
                        held.clear()
                        yield chunks.event({"content": so_far})
            elif event.text:
                yield chunks.event({"content": event.text})
            event = await anext(completion.events, None)
        if event is None:
            return
        done = event
        _finished(completion, done, metrics, streamed=True)
        reading = _read("".join(written), done, constraint)
        if buffer_all or held:
            if reading.parsed.tool_calls:
                yield chunks.event({"tool_calls": _tool_calls_json(reading.parsed.tool_calls)})
            elif reading.parsed.content:
                yield chunks.event({"content": reading.parsed.content})
        yield chunks.event({}, reading.finish_reason, _choice_extra(reading))
        if include_usage:
            yield chunks.usage(done)
        yield b"data: [DONE]\n\n"
    except AgentmillError as exc:
        # Headers are gone: the failure can only be told in the stream, as OpenAI does.
        log.error("stream %s failed: %s", completion.id, exc)
        yield chunks.error(exc)
    finally:
        # Runs on normal end and when the client disconnects (the task is cancelled):
        # closing the engine's stream frees its slot at once.
        await completion.events.aclose()  # type: ignore[attr-defined]


def stream(
    completion: Completion, body: ChatCompletionRequest, metrics: ServerMetrics
) -> StreamingResponse:
    """Answer as server-sent events ending in `data: [DONE]`."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _stream_body(completion, include_usage, metrics),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
