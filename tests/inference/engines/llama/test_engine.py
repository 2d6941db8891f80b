"""The llama.cpp engine itself, with the bundled model, below HTTP: the prompt window, prefix
reuse and its counters, per-request constraints under concurrency, cancellation, the bounded
queue, and stopping. What the server adds on top (usage, streams, tool calls, stop strings on
free text, seeds) is tested through the wire in tests/inference/server/test_app.py.

llama.cpp runs in a child process (as everywhere in these tests): a native crash fails the
test that caused it, naming the signal. One child holds the shared engine for the module and
runs each test's module-level function on it; the function returns plain data and the test
asserts on it here. The tests that stop an engine or shrink its queue build their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import signal
import time
import traceback
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

import pytest

from core.errors import AgentmillError, UserError
from inference.bundled import BUNDLED_MODEL_ID
from inference.decoding.constraints import OutputConstraint
from inference.engines.base import (
    EngineStats,
    Finished,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
    TextDelta,
)
from inference.engines.llama.engine import LlamaEngine
from inference.engines.llama.native import bundled_gguf

CONTEXT = 256
"""Tokens per slot of every engine here: small, so the window's edge is cheap to reach."""
SHARED = {"slots": 2, "context_per_slot": CONTEXT, "batch_tokens": 32}
"""The module's engine; 32-token batches make every chat prompt prefill in several chunks."""


def chat(text: str) -> str:
    """A one-message ChatML prompt (the bundled model's format)."""
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def greedy(text: str, max_tokens: int | None = 8, **options: Any) -> GenerationRequest:
    return GenerationRequest(
        chat(text), SamplingParams(temperature=0, max_tokens=max_tokens), **options
    )


SHORT = greedy("Name three colours.")
# The schema keeps the end of the string (and EOS) out for far longer than the window, so
# this request holds its slot until it is cancelled or the engine stops.
LONG = GenerationRequest(
    chat("Write a long poem."),
    SamplingParams(temperature=0),
    OutputConstraint("json", {"type": "string", "minLength": 1500}),
)


# -- the child process ------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """A whole generation: its text and its end."""

    text: str
    finished: Finished


@dataclass(frozen=True)
class Refusal:
    """What `generate` raised before yielding anything (exceptions do not all pickle)."""

    kind: str
    message: str
    param: str | None
    attributes: dict[str, Any]
    stats: EngineStats
    """The engine's counters right after: a refused request must not be left queued."""


def stream(
    engine: LlamaEngine, request: GenerationRequest
) -> AsyncGenerator[GenerationEvent, None]:
    return cast(AsyncGenerator[GenerationEvent, None], engine.generate(request))


async def collect(engine: LlamaEngine, request: GenerationRequest) -> Output:
    parts: list[str] = []
    async for event in engine.generate(request):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            return Output("".join(parts), event)
    raise AssertionError("the stream ended without a Finished event")


async def refusal(engine: LlamaEngine, request: GenerationRequest) -> Refusal:
    events = stream(engine, request)
    try:
        first = await anext(events)
    except AgentmillError as exc:
        names = ("prompt_tokens", "context_tokens", "waiting")
        attributes = {name: getattr(exc, name) for name in names if hasattr(exc, name)}
        param = exc.param if isinstance(exc, UserError) else None
        return Refusal(type(exc).__name__, str(exc), param, attributes, engine.stats())
    await events.aclose()
    raise AssertionError(f"the request was accepted: {first}")


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never {what}")
        await asyncio.sleep(0.01)


def refuse(engine: LlamaEngine, request: GenerationRequest) -> Refusal:
    """How `generate` refuses the request."""
    return asyncio.run(refusal(engine, request))


def generate(engine: LlamaEngine, *requests: GenerationRequest) -> list[Output]:
    """The requests one after the other."""

    async def run() -> list[Output]:
        return [await collect(engine, request) for request in requests]

    return asyncio.run(run())


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    engine = LlamaEngine(**options)
    try:
        conn.send(("ok", None))
        while (message := conn.recv()) is not None:
            function, args = message
            try:
                conn.send(("ok", function(engine, *args)))
            except Exception:
                conn.send(("raised", traceback.format_exc()))
    finally:
        engine.close()


class EngineHost:
    """A child process holding one engine, running functions on it (restarted if it died)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, self._options), daemon=True)
        self._process.start()
        theirs.close()
        self._receive("loading the model", 120)

    def call(self, function: Callable[..., Any], *args: Any, timeout_s: float = 120) -> Any:
        """`function(engine, *args)` in the child; its return value, or the test fails."""
        if not self._process.is_alive():
            self._start()  # an earlier test crashed it, and failed for that
        self._conn.send((function, args))
        return self._receive(function.__name__, timeout_s)

    def _receive(self, what: str, timeout_s: float) -> Any:
        try:
            if not self._conn.poll(timeout_s):
                self._process.kill()
                pytest.fail(f"{what} did not finish in {timeout_s:.0f}s")
            kind, value = self._conn.recv()
        except EOFError:
            self._process.join(10)
            code = self._process.exitcode
            how = signal.Signals(-code).name if code is not None and code < 0 else code
            pytest.fail(f"the engine's process died ({how}) during {what}")
        if kind == "raised":
            pytest.fail(f"{what} raised in the engine's process:\n{value}")
        return value

    def close(self) -> None:
        """Stop the child (its engine closes first)."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._process.join(30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


@pytest.fixture(scope="module")
def host() -> Iterator[EngineHost]:
    """The module's engine (SHARED), in its child process."""
    engine_host = EngineHost(SHARED)
    yield engine_host
    engine_host.close()


# -- tokens and the window ----------------------------------------------------------------


def _describe(engine: LlamaEngine) -> dict[str, Any]:
    return {
        "model_id": engine.model_id,
        "context": engine.context_tokens,
        "counts": [len(engine.tokenize(t)) for t in ("", "<|im_start|>", " x" * 10)],
        "template": engine.chat_template(),
        "stats": engine.stats(),
    }


def test_the_bundled_model_is_named_counted_and_templated(host: EngineHost) -> None:
    facts = host.call(_describe)

    assert (facts["model_id"], facts["context"]) == (BUNDLED_MODEL_ID, CONTEXT)
    assert facts["counts"] == [0, 1, 10]  # no BOS; special tokens are parsed, not spelled
    assert "<|im_start|>" in facts["template"]
    assert (facts["stats"].slots, facts["stats"].alive) == (2, True)


def _at_the_window(engine: LlamaEngine) -> dict[str, Any]:
    assert len(engine.tokenize(" x" * CONTEXT)) == CONTEXT  # one token per " x"

    def near(room: int, max_tokens: int | None) -> GenerationRequest:
        return GenerationRequest(
            " x" * (CONTEXT - room), SamplingParams(temperature=0, max_tokens=max_tokens)
        )

    async def run() -> dict[str, Any]:
        return {
            "full": await refusal(engine, near(0, 5)),
            "one_left": await collect(engine, near(1, None)),
            "three_left": await collect(engine, near(3, 100)),
        }

    return asyncio.run(run())


def test_a_prompt_must_leave_room_for_one_token_and_output_is_clamped_to_the_window(
    host: EngineHost,
) -> None:
    results = host.call(_at_the_window)

    full: Refusal = results["full"]
    assert (full.kind, full.param) == ("PromptTooLong", "messages")
    assert full.attributes == {"prompt_tokens": CONTEXT, "context_tokens": CONTEXT}
    assert full.stats.waiting == 0  # refused before it was queued
    for name, room in (("one_left", 1), ("three_left", 3)):
        done = results[name].finished
        assert done.prompt_tokens == CONTEXT - room
        assert done.completion_tokens <= room
        assert done.reason == "length" or done.completion_tokens < room


# -- prefix reuse ------------------------------------------------------------------------


def _twice_with_counters(engine: LlamaEngine, request: GenerationRequest) -> list[Any]:
    before = engine.stats()
    (first,) = generate(engine, request)
    between = engine.stats()
    (second,) = generate(engine, request)
    return [first, second, before, between, engine.stats()]


def test_a_repeated_prompt_evaluates_only_its_last_token_and_answers_the_same(
    host: EngineHost,
) -> None:
    request = greedy("Which planet is the largest? Answer in one sentence.", max_tokens=16)
    first, second, before, between, after = host.call(_twice_with_counters, request)

    tokens = first.finished.prompt_tokens
    assert second.finished.cached_prompt_tokens == tokens - 1
    assert after.prompt_tokens_sent - between.prompt_tokens_sent == tokens
    assert after.prompt_tokens_evaluated - between.prompt_tokens_evaluated == 1
    assert between.prompt_tokens_evaluated - before.prompt_tokens_evaluated == (
        tokens - first.finished.cached_prompt_tokens
    )
    assert second.text == first.text
    assert second.finished.completion_tokens == first.finished.completion_tokens


def _named_gguf_without_reuse(_shared: LlamaEngine) -> list[Any]:
    path = bundled_gguf()
    engine = LlamaEngine(path, slots=1, context_per_slot=CONTEXT, reuse_prefix=False)
    try:
        return [
            path.stem,
            engine.model_id,
            engine.context_tokens,
            *_twice_with_counters(engine, SHORT),
        ]
    finally:
        engine.close()


def test_an_engine_on_a_named_gguf_is_named_by_it_and_may_turn_reuse_off(
    host: EngineHost,
) -> None:
    stem, model_id, context, first, second, before, _, after = host.call(_named_gguf_without_reuse)

    assert (model_id, context) == (stem, CONTEXT)
    assert [first.finished.cached_prompt_tokens, second.finished.cached_prompt_tokens] == [0, 0]
    sent = after.prompt_tokens_sent - before.prompt_tokens_sent
    assert sent == after.prompt_tokens_evaluated - before.prompt_tokens_evaluated
    assert sent == 2 * first.finished.prompt_tokens
    assert second.text == first.text


# -- constrained output -----------------------------------------------------------------


def _together(engine: LlamaEngine, requests: list[GenerationRequest]) -> list[Output]:
    async def run() -> list[Output]:
        return list(await asyncio.gather(*(collect(engine, r) for r in requests)))

    return asyncio.run(run())


def test_more_constrained_requests_than_slots_each_get_their_own_output(
    host: EngineHost,
) -> None:
    answers = [f"answer-{i}" for i in range(5)]  # 5 requests, 2 slots: 3 wait their turn
    requests = [
        GenerationRequest(
            chat("Give me a word."),
            SamplingParams(temperature=1.0, seed=i, max_tokens=20),
            OutputConstraint("json", {"enum": [answer]}),
        )
        for i, answer in enumerate(answers)
    ]
    outputs = host.call(_together, requests)

    assert [o.text for o in outputs] == [json.dumps(a) for a in answers]
    assert all(o.finished.reason == "stop" for o in outputs)


def test_a_stop_string_never_cuts_a_constrained_output(host: EngineHost) -> None:
    request = GenerationRequest(
        chat("Give me a word."),
        SamplingParams(temperature=0, max_tokens=20, stop=("-",)),
        OutputConstraint("json", {"enum": ["alpha-beta"]}),
    )
    (output,) = host.call(generate, request)

    assert (output.text, output.finished.reason) == ('"alpha-beta"', "stop")


def test_a_budget_too_small_for_the_answer_still_closes_it_validly(host: EngineHost) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
        "required": ["title", "story"],
        "additionalProperties": False,
    }
    request = greedy(
        "Write a long story about a dragon, as JSON.",
        max_tokens=16,
        constraint=OutputConstraint("json", schema),
    )
    (output,) = host.call(generate, request)

    document = json.loads(output.text)
    assert set(document) == {"title", "story"}
    assert all(isinstance(value, str) for value in document.values())
    assert (output.finished.reason, output.finished.completion_tokens) == ("length", 16)


def test_an_unsupported_schema_is_refused_before_queueing(host: EngineHost) -> None:
    broken = OutputConstraint("json", {"type": "object", "properties": {"a": {"$ref": "#/x"}}})
    refused = host.call(refuse, greedy("Hi.", constraint=broken))

    assert (refused.kind, refused.param) == ("UserError", "schema")
    assert refused.message.startswith("unsupported JSON schema")
    assert refused.stats.waiting == 0


# -- cancellation, the queue, stopping ----------------------------------------------------


def _cancel_running_and_waiting(engine: LlamaEngine) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        first, second = stream(engine, LONG), stream(engine, LONG)
        firsts = [await anext(first), await anext(second)]  # both slots are decoding
        third = asyncio.create_task(collect(engine, SHORT))
        await until(lambda: engine.stats().waiting == 1, "queued the third")
        third.cancel()  # what a client going away does to its request's task
        with contextlib.suppress(asyncio.CancelledError):
            await third
        waiting = engine.stats().waiting
        await first.aclose()
        await second.aclose()
        await until(lambda: engine.stats().running == 0, "freed both slots")
        return {"firsts": firsts, "waiting": waiting, "after": await collect(engine, SHORT)}

    return asyncio.run(run())


def test_cancelled_requests_leave_the_queue_and_free_their_slots_at_once(
    host: EngineHost,
) -> None:
    result = host.call(_cancel_running_and_waiting)

    assert all(isinstance(event, TextDelta) for event in result["firsts"])
    assert result["waiting"] == 0  # gone from the queue as its task was cancelled
    assert result["after"].finished.reason in ("stop", "length")  # the engine serves on
    assert result["after"].text


def _a_full_queue(_shared: LlamaEngine) -> dict[str, Any]:
    engine = LlamaEngine(slots=1, context_per_slot=CONTEXT, max_waiting=1)

    async def run() -> dict[str, Any]:
        running = stream(engine, LONG)
        await anext(running)
        waiting = asyncio.create_task(collect(engine, SHORT))
        await until(lambda: engine.stats().waiting == 1, "queued the second")
        refused = await refusal(engine, SHORT)
        await running.aclose()
        return {"refused": refused, "admitted": await waiting, "stats": engine.stats()}

    try:
        return asyncio.run(run())
    finally:
        engine.close()


def test_a_full_queue_refuses_at_once_and_the_waiting_request_still_runs(
    host: EngineHost,
) -> None:
    result = host.call(_a_full_queue)

    refused: Refusal = result["refused"]
    assert (refused.kind, refused.attributes) == ("Overloaded", {"waiting": 1})
    assert (refused.stats.waiting, refused.stats.running) == (1, 1)  # the refused one left none
    assert result["admitted"].text
    assert result["stats"].waiting == 0


def _close_under_load(_shared: LlamaEngine) -> dict[str, Any]:
    engine = LlamaEngine(slots=1, context_per_slot=CONTEXT)

    async def rest(events: AsyncGenerator[GenerationEvent, None]) -> None:
        async for _ in events:
            pass

    async def run() -> dict[str, Any]:
        running = stream(engine, LONG)
        await anext(running)
        waiting = asyncio.create_task(collect(engine, SHORT))
        await until(lambda: engine.stats().waiting == 1, "queued the second")
        await asyncio.to_thread(engine.close)
        ends: list[str] = []
        for pending in (rest(running), waiting):
            try:
                await pending
                ends.append("finished")
            except AgentmillError as exc:
                ends.append(f"{type(exc).__name__}: {exc}")
        engine.close()  # again: nothing to do
        return {"ends": ends, "stats": engine.stats()}

    return asyncio.run(run())


def test_closing_ends_running_and_waiting_requests_with_an_error(host: EngineHost) -> None:
    result = host.call(_close_under_load)

    assert result["ends"] == ["EngineFailed: inference engine stopped"] * 2
    stats: EngineStats = result["stats"]
    assert (stats.alive, stats.running, stats.waiting) == (False, 0, 0)


def _use_after_close(_shared: LlamaEngine) -> dict[str, Any]:
    engine = LlamaEngine(slots=1, context_per_slot=CONTEXT)
    engine.close()
    ends: dict[str, Any] = {"generate": refuse(engine, SHORT)}
    uses: dict[str, Callable[[], object]] = {
        "tokenize": lambda: engine.tokenize("hi"),
        "template": engine.chat_template,
    }
    for name, use in uses.items():
        try:
            use()
            ends[name] = "answered"
        except AgentmillError as exc:
            ends[name] = f"{type(exc).__name__}: {exc}"
    return ends


def test_a_closed_engine_refuses_every_use_instead_of_touching_its_freed_model(
    host: EngineHost,
) -> None:
    ends = host.call(_use_after_close, timeout_s=60)

    assert ends["tokenize"] == ends["template"] == "EngineFailed: inference engine stopped"
    refused: Refusal = ends["generate"]
    assert (refused.kind, refused.message) == ("EngineFailed", "inference engine stopped")


def _worker_dies(_shared: LlamaEngine) -> dict[str, Any]:
    engine = LlamaEngine(slots=1, context_per_slot=CONTEXT)

    def fault(_plan: object) -> None:
        raise RuntimeError("planted fault in sampling")

    engine._sample = fault  # type: ignore[method-assign,assignment]
    try:
        asyncio.run(collect(engine, SHORT))
        running = "finished"
    except AgentmillError as exc:
        running = f"{type(exc).__name__}: {exc}"
    later = refuse(engine, SHORT)
    asyncio.run(until(lambda: not engine.stats().alive, "reported the worker dead", 10))
    stats = engine.stats()
    engine.close()  # a dead worker still closes cleanly
    return {"running": running, "later": later, "stats": stats}


def test_a_dead_worker_fails_its_request_and_refuses_later_ones_at_once(
    host: EngineHost,
) -> None:
    result = host.call(_worker_dies, timeout_s=60)  # a later request that hangs fails here

    assert result["running"] == "EngineFailed: the inference engine's worker failed"
    later: Refusal = result["later"]
    assert (later.kind, later.message) == ("EngineFailed", "the inference engine's worker failed")
    assert later.stats.waiting == 0
    assert (result["stats"].alive, result["stats"].running) == (False, 0)
