"""Grammars for constrained decoding on the transformers engine (llguidance).

An `OutputConstraint` becomes an llguidance grammar: a JSON schema for `json` and `tool_call`,
and a Lark grammar for `tool_or_text` (a `<tool_call>` wrapping the schema, or plain text that
does not start with `<`). Each request gets its own `LLMatcher`, which the sampler advances
token by token and asks for the mask of allowed next tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llguidance import LLMatcher, LLTokenizer
from llguidance.hf import from_tokenizer
from transformers import PreTrainedTokenizerFast

from inference.constraints import TOOL_CLOSE, TOOL_OPEN, OutputConstraint

# Compact JSON: no free whitespace, so a small model cannot wander into endless blanks.
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass(frozen=True)
class Grammar:
    """A compiled grammar; `exact` when llguidance enforces every keyword of the schema."""

    text: str
    exact: bool


def ll_tokenizer(
    tokenizer: PreTrainedTokenizerFast, vocab_size: int, eos_ids: list[int]
) -> LLTokenizer:
    """llguidance's view of the tokenizer, padded to the model's vocabulary (costs ~1 s)."""
    return from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos_ids)


def _schema_text(schema: dict[str, Any]) -> str:
    return json.dumps({**schema, "x-guidance": JSON_STYLE}, sort_keys=True)


def _source(constraint: OutputConstraint) -> str:
    schema = _schema_text(constraint.schema)
    if constraint.kind in ("json", "tool_call"):
        return LLMatcher.grammar_from_json_schema(schema)
    lark = "\n".join(
        [
            'start: tool_call | TEXT | ""',
            f"tool_call: {json.dumps(TOOL_OPEN)} body {json.dumps(TOOL_CLOSE)}",
            f"body: %json {schema}",
            r"TEXT: /[^<\s][\s\S]*/",
        ]
    )
    return LLMatcher.grammar_from_lark(lark)


@lru_cache(maxsize=256)
def _compile(kind: str, schema_text: str, tokenizer: LLTokenizer) -> Grammar | None:
    constraint = OutputConstraint(kind, json.loads(schema_text))  # type: ignore[arg-type]
    try:
        text = _source(constraint)
    except ValueError:
        return None
    failed, messages = LLMatcher.validate_grammar_with_warnings(text, tokenizer)
    if failed:
        return None  # e.g. look-around in a `pattern`: fall back to validate-and-retry
    return Grammar(text, exact=not messages)


def compile_grammar(constraint: OutputConstraint, tokenizer: LLTokenizer) -> Grammar | None:
    """The grammar for `constraint`, or None when llguidance cannot express the schema."""
    return _compile(constraint.kind, json.dumps(constraint.schema, sort_keys=True), tokenizer)


def matcher(grammar: Grammar, tokenizer: LLTokenizer) -> LLMatcher:
    """A fresh matcher at the start of the output."""
    return LLMatcher(tokenizer, grammar.text, log_level=0)
