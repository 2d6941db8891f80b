"""The budget keeper's JSON cursor: from any prefix of a valid document, a closing it offers
completes a document that validates against the schema."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from inference.decoding.guide import MAX_CLOSINGS_TRIED
from inference.decoding.json_cursor import JsonCursor
from inference.decoding.json_schema_walk import dump

CASES = json.loads((Path(__file__).parents[3] / "bench" / "tool_calls_cases.json").read_text())[
    "cases"
]

HAND_MADE: list[tuple[dict[str, Any], Any]] = [
    (
        {
            "type": "object",
            "properties": {
                "note": {"type": "string"},
                "n": {"type": "number", "minimum": -5, "maximum": 1000},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            },
            "required": ["note", "n", "tags"],
        },
        {"note": 'Héllo "wörld" \\ ✓ 日本\n', "n": -3.25, "tags": ["a", "b"]},
    ),
    (
        {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "sku": {"type": "string"},
                            "qty": {"type": "integer", "minimum": 1},
                            "gift": {"type": "boolean"},
                        },
                        "required": ["sku", "qty"],
                    },
                    "minItems": 1,
                },
                "when": {"type": "string", "format": "date-time"},
                "mode": {"enum": ["fast", "slow", None]},
            },
            "required": ["items", "when", "mode"],
        },
        {
            "items": [{"sku": "A-1", "qty": 12, "gift": False}, {"sku": "B", "qty": 1}],
            "when": "2026-12-05T10:30:00Z",
            "mode": None,
        },
    ),
]


def _in_schema_order(value: Any, schema: Any) -> Any:
    """`value` with object keys in the schema's `properties` order (the order the grammar
    writes them in)."""
    if isinstance(value, dict) and isinstance(schema, dict) and "properties" in schema:
        props = schema["properties"]
        keys = [k for k in props if k in value] + [k for k in value if k not in props]
        return {k: _in_schema_order(value[k], props.get(k, {})) for k in keys}
    items = schema.get("items") if isinstance(schema, dict) else None
    if isinstance(value, list) and isinstance(items, dict):
        return [_in_schema_order(item, items) for item in value]
    return value


def _completes(schema: dict[str, Any], prefix: str, closing: str) -> bool:
    try:
        return Draft202012Validator(schema).is_valid(json.loads(prefix + closing))
    except json.JSONDecodeError:
        return False


def _check_every_prefix(schema: dict[str, Any], value: Any) -> None:
    document = dump(_in_schema_order(value, schema))
    assert Draft202012Validator(schema).is_valid(json.loads(document))
    for cut in range(len(document) + 1):
        cursor = JsonCursor(schema)
        assert cursor.feed(document[:cut]), document[:cut]
        closings = list(itertools.islice(cursor.closings(), MAX_CLOSINGS_TRIED))
        assert any(_completes(schema, document[:cut], c) for c in closings), (
            document[:cut],
            closings,
        )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_prefix_of_a_benchmark_call_can_be_closed(case: dict[str, Any]) -> None:
    _check_every_prefix(case["parameters"], case["expected"])


@pytest.mark.parametrize(("schema", "value"), HAND_MADE)
def test_every_prefix_of_escapes_unicode_numbers_and_nesting_can_be_closed(
    schema: dict[str, Any], value: Any
) -> None:
    _check_every_prefix(schema, value)


def test_the_empty_prefix_closes_to_the_minimal_valid_document() -> None:
    schema = HAND_MADE[0][0]
    closing = JsonCursor(schema).closing()
    assert closing is not None
    assert json.loads(closing) == {"note": "", "n": 0, "tags": ["", ""]}


def test_a_document_off_its_schema_is_refused() -> None:
    cursor = JsonCursor({"type": "object", "properties": {"n": {"type": "integer"}}})
    assert not cursor.feed('["n"]')
    assert cursor.failed
    assert cursor.closing() is None
