"""llguidance grammars for constraints, and the guide that keeps room to close them, on the
bundled model's own vocabulary (loaded in a child process: see conftest.run_in_child)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from inference.decoding.constraints import TOOL_CLOSE, TOOL_OPEN, OutputConstraint
from inference.decoding.grammar import GrammarError, compile_grammar, grammar_source
from inference.decoding.guide import Guide
from tests.inference.conftest import run_in_child

CASES = json.loads((Path(__file__).parents[3] / "bench" / "tool_calls_cases.json").read_text())[
    "cases"
]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["city", "n"],
}


def _tokenizer() -> Any:
    from llguidance.llamacpp import lltokenizer_from_vocab

    from inference.engines.llama.native import NativeModel, bundled_gguf

    model = NativeModel.load(bundled_gguf(), n_seq=1, n_ctx_seq=64, n_batch=16, n_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(model.vocab, eos_token=model.end_tokens())


def _walk(guide: Guide, rng: np.random.Generator, eos: frozenset[int]) -> list[int]:
    """Decode like an engine whose model picks any token the grammar allows, at random:
    the worst case for closing in time (it never chooses to end a string)."""
    out: list[int] = []
    while not guide.finished:
        allowed = guide.allowed()

        def draw(allowed: np.ndarray = allowed) -> int:
            return int(rng.choice(np.flatnonzero(allowed)))

        def forbid(token: int, allowed: np.ndarray = allowed) -> None:
            allowed[token] = False

        token = guide.pick(draw, forbid)
        if token is None:
            return out + guide.close()
        if token in eos:
            return out
        guide.accept(token)
        out.append(token)
    return out


def _random_outputs_close_within_budget(seed: int) -> None:
    tokenizer = _tokenizer()
    eos = frozenset(tokenizer.eos_tokens)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(CASES), size=25, replace=False)
    kept = 0
    for index in picked:
        schema = CASES[index]["parameters"]
        for budget in (20, 48):
            grammar = compile_grammar(OutputConstraint("tool_call", schema), tokenizer)
            guide = Guide(grammar, tokenizer, budget=budget)
            if not guide.keeping:  # the shortest valid call does not fit this budget
                continue
            kept += 1
            tokens = _walk(guide, rng, eos)
            text = tokenizer.decode_bytes(tokens).decode()
            assert len(tokens) <= budget, (CASES[index]["name"], budget, text)
            assert Draft202012Validator(schema).is_valid(json.loads(text)), text
    assert kept >= 25  # most of the cases fit at least the larger budget


def test_random_constrained_outputs_always_close_within_the_budget() -> None:
    run_in_child(_random_outputs_close_within_budget, 7, timeout_s=300)


def _grammar_kinds_compile() -> None:
    tokenizer = _tokenizer()
    for kind in ("json", "tool_call", "tool_or_text"):
        grammar = compile_grammar(OutputConstraint(kind, SCHEMA), tokenizer)
        assert grammar.exact
    call = compile_grammar(OutputConstraint("tool_or_text", SCHEMA), tokenizer)
    for text, whole in (
        ("Hello there", True),
        (f'{TOOL_OPEN}{{"city": "Oslo", "n": 2}}{TOOL_CLOSE}', True),
        (" leading space", False),
        (f'{TOOL_OPEN}{{"city":"Oslo","n":2}}{TOOL_CLOSE}', False),  # compact separators only
    ):
        guide = Guide(call, tokenizer)
        tokens = tokenizer.tokenize_str(text)
        consumed = guide.matcher.try_consume_tokens(tokens)
        assert (consumed == len(tokens) and guide.matcher.is_accepting()) == whole, text
    with pytest.raises(GrammarError):
        compile_grammar(
            OutputConstraint("json", {"type": "object", "properties": {"a": {"$ref": "#/x"}}}),
            tokenizer,
        )


def test_each_kind_compiles_and_tool_or_text_admits_text_or_a_compact_call() -> None:
    run_in_child(_grammar_kinds_compile)


def _several_calls_by_grammar() -> None:
    tokenizer = _tokenizer()
    one = '{"city": "Oslo", "n": 2}'
    two = f"{TOOL_OPEN}[{one}, {one}]{TOOL_CLOSE}"
    for most, accepted in ((1, False), (4, True)):
        schema = {"type": "array", "items": SCHEMA, "minItems": 1, "maxItems": most}
        guide = Guide(
            compile_grammar(OutputConstraint("tool_or_text", schema), tokenizer), tokenizer
        )
        tokens = tokenizer.tokenize_str(two)
        whole = guide.matcher.try_consume_tokens(tokens) == len(tokens)
        assert (whole and guide.matcher.is_accepting()) == accepted, most
        # Cut after the first call, the shortest valid ending closes the list.
        cut = Guide(compile_grammar(OutputConstraint("tool_or_text", schema), tokenizer), tokenizer)
        assert cut.matcher.try_consume_tokens(tokenizer.tokenize_str(f"{TOOL_OPEN}[{one}")) > 0


def test_a_list_holds_as_many_calls_as_allowed_and_no_more() -> None:
    run_in_child(_several_calls_by_grammar)


def test_tool_or_text_is_a_call_or_text_not_starting_with_space_or_angle() -> None:
    source = grammar_source(OutputConstraint("tool_or_text", SCHEMA))
    assert "tool_call" in source
    assert r"/[^<\s][\s\S]*/" in source
