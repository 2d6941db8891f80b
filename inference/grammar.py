"""GBNF grammars for llama.cpp from an `OutputConstraint` (JSON schema -> grammar)."""

from __future__ import annotations

import json
import re

from llama_cpp.llama_grammar import json_schema_to_gbnf

from inference.constraints import TOOL_CLOSE, TOOL_OPEN, OutputConstraint

# Plain text in "tool or text" mode: it may not start with '<' (that starts a tool call) nor
# with whitespace (so a tool call cannot hide behind a newline).
_TEXT_RULES = "text ::= [^<\\x20\\t\\n\\r] text-char*\ntext-char ::= [^\\x00]\n"
_ROOT_DEF = re.compile(r"^root\s*::=", re.MULTILINE)
# llama-cpp-python's converter lets raw control characters into strings, which JSON forbids
# (json.loads rejects them); strings must escape them.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def _literal(text: str) -> str:
    return json.dumps(text)


def grammar_for(constraint: OutputConstraint) -> str:
    """The grammar that makes every completion satisfy `constraint`."""
    schema_gbnf = str(json_schema_to_gbnf(json.dumps(constraint.schema))).replace(
        _LOOSE_CHAR, _STRICT_CHAR
    )
    if constraint.kind in ("json", "tool_call"):
        return schema_gbnf
    call_gbnf, count = _ROOT_DEF.subn("tool-call-json ::=", schema_gbnf)
    if count != 1:
        raise ValueError("unexpected grammar shape from the JSON schema converter")
    root = f"root ::= {_literal(TOOL_OPEN)} tool-call-json {_literal(TOOL_CLOSE)} | text\n"
    return root + call_gbnf + "\n" + _TEXT_RULES
