"""Grammars built from constraints, checked by llama.cpp's own grammar parser."""

from __future__ import annotations

import pytest

from inference.constraints import OutputConstraint
from inference.grammar import grammar_for
from inference.llama_native import NativeModel, Sampler, bundled_gguf

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["city", "n"],
}


@pytest.fixture(scope="module")
def model() -> NativeModel:
    return NativeModel.load(bundled_gguf(), n_seq=1, n_ctx_seq=256, n_batch=64, n_threads=1)


@pytest.mark.parametrize("kind", ["json", "tool_call", "tool_or_text"])
def test_grammars_compile_in_llama_cpp(model: NativeModel, kind: str) -> None:
    grammar = grammar_for(OutputConstraint(kind, SCHEMA))  # type: ignore[arg-type]
    sampler = Sampler(model, temperature=0, top_p=1, seed=1, grammar=grammar)
    sampler.free()


def test_strings_may_not_hold_raw_control_characters() -> None:
    grammar = grammar_for(OutputConstraint("json", SCHEMA))
    assert '[^"\\\\\\x7F\\x00-\\x1F]' in grammar


def test_tool_or_text_root_offers_both() -> None:
    grammar = grammar_for(OutputConstraint("tool_or_text", SCHEMA))
    assert grammar.startswith('root ::= "<tool_call>" tool-call-json "</tool_call>" | text')


def test_a_broken_grammar_is_refused(model: NativeModel) -> None:
    with pytest.raises(ValueError, match="rejected"):
        Sampler(model, temperature=0, top_p=1, seed=None, grammar="root ::= (")
