"""Constrained decoding on the transformers engine: llguidance over a Hugging Face tokenizer.

The grammars themselves are shared with the llama.cpp engine (`inference.decoding.grammar`); this
module adapts the tokenizer and hands each request its own `Guide` (grammar matcher plus
budget keeper), which `BatchSampler` advances token by token and asks for the mask.
"""

from __future__ import annotations

from llguidance import LLTokenizer
from llguidance.hf import from_tokenizer
from transformers import PreTrainedTokenizerFast

from inference.decoding.constraints import OutputConstraint
from inference.decoding.grammar import Grammar, GrammarError
from inference.decoding.grammar import compile_grammar as _compile_grammar
from inference.decoding.guide import Guide

__all__ = ["Grammar", "compile_grammar", "ll_tokenizer", "matcher"]


def ll_tokenizer(
    tokenizer: PreTrainedTokenizerFast, vocab_size: int, eos_ids: list[int]
) -> LLTokenizer:
    """llguidance's view of the tokenizer, padded to the model's vocabulary (costs ~1 s)."""
    return from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos_ids)


def compile_grammar(constraint: OutputConstraint, tokenizer: LLTokenizer) -> Grammar | None:
    """The grammar for `constraint`, or None when llguidance cannot express the schema."""
    try:
        return _compile_grammar(constraint, tokenizer)
    except GrammarError:
        return None  # e.g. look-around in a `pattern`: fall back to validate-and-retry


def matcher(grammar: Grammar, tokenizer: LLTokenizer) -> Guide:
    """A fresh guide at the start of the output (its budget is set when decoding starts)."""
    return Guide(grammar, tokenizer)
