"""llguidance grammars for an `OutputConstraint`, shared by the llama.cpp and transformers engines.

`json` and `tool_call` compile the JSON schema directly; `tool_or_text` is a Lark grammar: a
`<tool_call>` wrapping the schema, or plain text that does not start with `<` or whitespace.
JSON is compact (`", "` and `": "`, no other whitespace), so a small model cannot wander into
endless blanks, and properties come in the schema's `properties` order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from llguidance import LLMatcher, LLTokenizer

from inference.decoding.constraints import TOOL_CLOSE, TOOL_OPEN, OutputConstraint
from inference.decoding.json_schema_walk import ITEM_SEPARATOR, KEY_SEPARATOR

JSON_STYLE = {
    "whitespace_flexible": False,
    "item_separator": ITEM_SEPARATOR,
    "key_separator": KEY_SEPARATOR,
    # Keywords llguidance does not implement (formats such as `uri`, `patternProperties`) are
    # ignored with a warning rather than refused: the grammar is then not `exact`.
    "lenient": True,
}


class GrammarError(ValueError):
    """llguidance cannot express the constraint's schema."""


@dataclass(frozen=True)
class Grammar:
    """A compiled grammar; `exact` when llguidance enforces every keyword of the schema."""

    text: str
    exact: bool
    constraint: OutputConstraint


def _schema_text(schema: dict[str, Any]) -> str:
    # Key order is kept: it is the order the grammar emits properties in.
    return json.dumps({**schema, "x-guidance": JSON_STYLE})


def grammar_source(constraint: OutputConstraint) -> str:
    """The llguidance grammar (serialised) for `constraint`."""
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
def _compile(kind: str, schema_text: str, tokenizer: LLTokenizer) -> Grammar:
    constraint = OutputConstraint(kind, json.loads(schema_text))  # type: ignore[arg-type]
    try:
        text = grammar_source(constraint)
    except ValueError as exc:
        raise GrammarError(str(exc)) from None
    failed, messages = LLMatcher.validate_grammar_with_warnings(text, tokenizer)
    if failed:
        raise GrammarError(messages[0] if messages else "invalid grammar")
    return Grammar(text, exact=not messages, constraint=constraint)


def compile_grammar(constraint: OutputConstraint, tokenizer: LLTokenizer) -> Grammar:
    """The grammar for `constraint`; raises `GrammarError` when llguidance cannot express it."""
    return _compile(constraint.kind, json.dumps(constraint.schema), tokenizer)
