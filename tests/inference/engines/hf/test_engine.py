"""The transformers engine on CPU with a tiny random llama and a real (locally trained) tokenizer.

Random weights say nothing about quality, but everything the engine adds is observable:
streaming, batching, sampling, stop strings, cancellation, back-pressure, prefix reuse and
grammar-constrained output (which must parse whatever the weights are).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from inference.decoding.constraints import OutputConstraint, parse_output
from inference.engines.base import (
    Finished,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
    TextDelta,
)
from inference.engines.hf.admission import SlotGate
from inference.engines.hf.engine import TransformersEngine
from inference.engines.hf.text import IncrementalDetokenizer
from inference.errors import OutputInvalid, Overloaded, PromptTooLong
from inference.server.chat_template import CHATML

CONTEXT = 128
CITY = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Paris", "Rome"]},
        "days": {"type": "integer", "minimum": 0, "maximum": 99},
        "rain": {"type": "boolean"},
    },
    "required": ["city", "days", "rain"],
    "additionalProperties": False,
}
CALL = {
    "type": "object",
    "properties": {"name": {"const": "get_weather"}, "arguments": CITY},
    "required": ["name", "arguments"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def engine(hf_model_dir: Path) -> Iterator[TransformersEngine]:
    engine = TransformersEngine(
        hf_model_dir, slots=4, max_waiting=2, context_tokens=CONTEXT, page_size=16
    )
    yield engine
    engine.close()


def request(prompt: str = "Hello", **params: object) -> GenerationRequest:
    return GenerationRequest(prompt, SamplingParams(**params))  # type: ignore[arg-type]


async def collect(engine: TransformersEngine, req: GenerationRequest) -> tuple[list[str], Finished]:
    deltas: list[str] = []
    events: list[GenerationEvent] = [event async for event in engine.generate(req)]
    for event in events[:-1]:
        assert isinstance(event, TextDelta)
        deltas.append(event.text)
    assert isinstance(events[-1], Finished)
    return deltas, events[-1]


def text_of(engine: TransformersEngine, req: GenerationRequest) -> tuple[str, Finished]:
    deltas, finished = asyncio.run(collect(engine, req))
    return "".join(deltas), finished


def test_streams_deltas_then_finished_with_counts(engine: TransformersEngine) -> None:
    prompt = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    deltas, finished = asyncio.run(collect(engine, request(prompt, temperature=0, max_tokens=12)))
    assert len(deltas) > 1
    assert finished.reason == "length"
    assert finished.completion_tokens == 12
    assert finished.prompt_tokens == len(engine.tokenize(prompt))
    assert 0 < finished.time_to_first_token_s < 10
    assert engine.stats().running == 0


def test_greedy_is_deterministic_and_seed_reproduces_sampling(engine: TransformersEngine) -> None:
    greedy = [text_of(engine, request(temperature=0, max_tokens=8))[0] for _ in range(2)]
    assert greedy[0] == greedy[1]
    # A nucleus this small keeps only the most likely token: sampling becomes greedy.
    assert text_of(engine, request(temperature=1.0, top_p=1e-9, max_tokens=8))[0] == greedy[0]
    first, _ = text_of(engine, request(temperature=1.0, seed=7, max_tokens=24))
    again, _ = text_of(engine, request(temperature=1.0, seed=7, max_tokens=24))
    other, _ = text_of(engine, request(temperature=1.0, seed=8, max_tokens=24))
    assert first == again
    assert first != other


def test_stop_sequence_cuts_the_text(engine: TransformersEngine) -> None:
    full, _ = text_of(engine, request(temperature=1.0, seed=11, max_tokens=40))
    stop = full[10:13]
    cut, finished = text_of(
        engine, request(temperature=1.0, seed=11, max_tokens=40, stop=(stop, "never seen"))
    )
    assert cut == full[: full.find(stop)]
    assert finished.reason == "stop"
    assert finished.completion_tokens < 40


def test_concurrent_requests_all_finish_in_shared_batches(engine: TransformersEngine) -> None:
    async def four() -> list[tuple[list[str], Finished]]:
        prompts = ["Hello", "The weather", "Paris", "Rome is"]
        return await asyncio.gather(
            *(collect(engine, request(p, temperature=0.8, max_tokens=24)) for p in prompts)
        )

    results = asyncio.run(four())
    assert [f.prompt_tokens for _, f in results] == [
        len(engine.tokenize(p)) for p in ["Hello", "The weather", "Paris", "Rome is"]
    ]
    assert all(f.completion_tokens >= 1 for _, f in results)
    assert engine.peak_batch >= 2
    assert engine.stats().running == 0


def test_closing_the_stream_cancels_and_frees_the_slot(engine: TransformersEngine) -> None:
    async def cancel_midway() -> None:
        stream = engine.generate(request(temperature=0))  # runs to the context limit
        assert isinstance(await anext(stream), TextDelta)
        assert engine.stats().running == 1
        await stream.aclose()
        assert engine.stats().running == 0
        batches = engine._manager.batch_processor
        assert batches is not None
        for _ in range(100):  # the manager drops it on its next step
            if not batches.scheduler.active_requests:
                break
            await asyncio.sleep(0.02)
        assert not batches.scheduler.active_requests

    asyncio.run(cancel_midway())
    _, finished = text_of(engine, request(temperature=0, max_tokens=3))
    assert finished.completion_tokens == 3


def test_prompt_too_long_is_refused_before_any_output(engine: TransformersEngine) -> None:
    prompt = "Hello " * CONTEXT
    with pytest.raises(PromptTooLong) as raised:
        asyncio.run(collect(engine, request(prompt)))
    assert raised.value.prompt_tokens == len(engine.tokenize(prompt))
    assert raised.value.context_tokens == CONTEXT
    assert engine.stats().running == 0


def test_full_queue_raises_overloaded(engine: TransformersEngine) -> None:
    async def flood() -> None:
        release = asyncio.Event()

        async def hold() -> Finished:
            stream = engine.generate(request(temperature=0, max_tokens=16))
            first = await anext(stream)
            await release.wait()
            rest = [first] + [event async for event in stream]
            assert isinstance(rest[-1], Finished)
            return rest[-1]

        holders = [asyncio.create_task(hold()) for _ in range(6)]  # 4 slots + 2 waiting
        for _ in range(200):
            if engine.stats().waiting == 2:
                break
            await asyncio.sleep(0.01)
        assert (engine.stats().running, engine.stats().waiting) == (4, 2)
        with pytest.raises(Overloaded):
            await anext(engine.generate(request(max_tokens=1)))
        release.set()
        assert all(f.completion_tokens == 16 for f in await asyncio.gather(*holders))

    asyncio.run(flood())
    assert (engine.stats().running, engine.stats().waiting) == (0, 0)


def test_shared_prompt_prefix_is_served_from_the_cache(engine: TransformersEngine) -> None:
    system = "The weather in Paris is sunny today; in Rome it rains. " * 2
    before = engine.stats()
    _, first = text_of(engine, request(system + "Paris?", temperature=0, max_tokens=2))
    _, second = text_of(engine, request(system + "Rome?", temperature=0, max_tokens=2))
    after = engine.stats()
    assert second.cached_prompt_tokens >= 16  # whole 16-token pages of the shared prefix
    sent = after.prompt_tokens_sent - before.prompt_tokens_sent
    evaluated = after.prompt_tokens_evaluated - before.prompt_tokens_evaluated
    assert sent == first.prompt_tokens + second.prompt_tokens
    assert evaluated == sent - first.cached_prompt_tokens - second.cached_prompt_tokens


@pytest.mark.parametrize(
    ("kind", "schema"), [("json", CITY), ("tool_call", CALL), ("tool_or_text", CALL)]
)
def test_grammar_makes_constrained_output_parse(
    engine: TransformersEngine, kind: str, schema: dict[str, object]
) -> None:
    constraint = OutputConstraint(kind, schema)  # type: ignore[arg-type]
    for temperature, seed in [(0.0, None), (1.0, 1), (1.0, 2), (1.5, 3)]:
        params = SamplingParams(temperature=temperature, seed=seed, max_tokens=CONTEXT - 10)
        deltas, finished = asyncio.run(
            collect(engine, GenerationRequest("Weather?", params, constraint))
        )
        text = "".join(deltas)
        if kind == "tool_or_text" and finished.reason == "length":
            assert not text.lstrip().startswith("<")  # endless plain text is still plain text
            continue
        assert finished.reason == "stop"
        parsed = parse_output(text, constraint)
        if kind == "tool_call" or text.startswith("<"):
            assert parsed.tool_calls[0].name == "get_weather"


def test_schema_beyond_the_grammar_is_validated_and_retried(engine: TransformersEngine) -> None:
    # llguidance cannot compile look-around: the engine falls back to validate-and-retry, and
    # nothing can match this pattern, so every attempt fails and nothing is streamed.
    constraint = OutputConstraint("json", {"type": "string", "pattern": "^(?=a)b$"})
    prompt_tokens = len(engine.tokenize("Weather?"))
    before = engine.stats().prompt_tokens_sent
    streamed: list[GenerationEvent] = []

    async def run() -> None:
        params = SamplingParams(temperature=0, max_tokens=8)
        async for event in engine.generate(GenerationRequest("Weather?", params, constraint)):
            streamed.append(event)

    with pytest.raises(OutputInvalid, match="3 attempts"):
        asyncio.run(run())
    assert streamed == []
    assert engine.stats().prompt_tokens_sent - before == 3 * prompt_tokens
    assert engine.stats().running == 0


def test_without_grammar_constrained_output_is_retried_then_refused(hf_model_dir: Path) -> None:
    engine = TransformersEngine(
        hf_model_dir, grammar=False, max_attempts=2, slots=1, context_tokens=CONTEXT
    )
    try:
        with pytest.raises(OutputInvalid, match="2 attempts"):
            asyncio.run(
                collect(engine, GenerationRequest("Hi", constraint=OutputConstraint("json", CITY)))
            )
    finally:
        engine.close()


def test_chat_template_and_token_counting(engine: TransformersEngine) -> None:
    assert engine.chat_template() == CHATML
    assert len(engine.tokenize("<|im_start|>")) == 1
    assert len(engine.tokenize("")) == 0
    assert engine.context_tokens == CONTEXT
    assert engine.stats().slots == 4


def test_dummy_weights_build_the_model_from_its_config(hf_model_dir: Path) -> None:
    engine = TransformersEngine(
        config=hf_model_dir,
        tokenizer_dir=hf_model_dir,
        dummy_weights=True,
        model_id="dummy",
        slots=1,
        context_tokens=64,
    )
    try:
        _, finished = text_of(engine, request(temperature=0, max_tokens=4))
        assert finished.completion_tokens == 4
        assert engine.model_id == "dummy"
    finally:
        engine.close()


def test_incremental_detokenizer_never_splits_a_character(hf_model_dir: Path) -> None:
    tokenizer = PreTrainedTokenizerFast.from_pretrained(hf_model_dir)
    text = "Héllo wörld, ça va? ✓ 日本 🙂"
    ids = tokenizer.encode(text, add_special_tokens=False)
    detokenizer = IncrementalDetokenizer(lambda ids: str(tokenizer.decode(ids)))
    pieces = [detokenizer.push([i]) for i in ids] + [detokenizer.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


def test_slot_gate_hands_slots_over_in_order_and_forgets_cancelled_waiters() -> None:
    async def scenario() -> None:
        gate = SlotGate(slots=1, max_waiting=2)
        await gate.acquire()
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        assert (gate.running, gate.waiting) == (1, 2)
        with pytest.raises(Overloaded):
            await gate.acquire()
        first.cancel()
        await asyncio.sleep(0)
        assert gate.waiting == 1
        gate.release()
        await second
        assert (gate.running, gate.waiting) == (1, 0)
        gate.release()
        assert gate.running == 0

    asyncio.run(scenario())
