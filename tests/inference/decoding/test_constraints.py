"""Requests -> constraints, and reading outputs back as content or tool calls."""

from __future__ import annotations

from typing import Any

import pytest

from inference.decoding.constraints import (
    TOOL_CLOSE,
    TOOL_OPEN,
    constraint_for,
    offered_tools,
    parse_output,
    render_tool_calls,
)
from inference.errors import SchemaError
from inference.wire import ChatCompletionRequest

TOOL: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
G: Any = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}


def _req(**extra: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}
    return ChatCompletionRequest.model_validate(body)


def test_kinds() -> None:
    assert constraint_for(_req()) is None
    assert constraint_for(_req(tools=[TOOL], tool_choice="none")) is None
    assert offered_tools(_req(tools=[TOOL], tool_choice="none")) == []
    assert constraint_for(_req(tools=[TOOL])).kind == "tool_or_text"  # type: ignore[union-attr]
    required = constraint_for(_req(tools=[TOOL, G], tool_choice="required"))
    assert required is not None
    assert required.kind == "tool_call"
    assert len(required.schema["anyOf"]) == 2
    named = constraint_for(
        _req(tools=[TOOL, G], tool_choice={"type": "function", "function": {"name": "g"}})
    )
    assert named is not None
    assert named.schema["properties"]["name"] == {"const": "g"}
    fmt = constraint_for(_req(response_format={"type": "json_object"}))
    assert fmt is not None
    assert fmt.kind == "json"


def test_parse_tool_or_text() -> None:
    constraint = constraint_for(_req(tools=[TOOL]))
    text = parse_output("plain answer", constraint)
    assert (text.content, text.tool_calls) == ("plain answer", [])
    call = parse_output(
        TOOL_OPEN + '[{"name": "f", "arguments": {"x": 1}}]' + TOOL_CLOSE, constraint
    )
    assert call.content is None
    assert call.tool_calls[0].name == "f"
    assert call.tool_calls[0].arguments == '{"x": 1}'
    with pytest.raises(SchemaError):
        parse_output(TOOL_OPEN + '[{"name": "f"', constraint)
    two = '[{"name": "f", "arguments": {}}, {"name": "f", "arguments": {}}]'
    with pytest.raises(SchemaError):  # one call unless the request allows several
        parse_output(TOOL_OPEN + two + TOOL_CLOSE, constraint)


def test_several_calls_in_one_reply_when_the_request_allows_them() -> None:
    auto = constraint_for(_req(tools=[TOOL, G], parallel_tool_calls=True))
    assert auto is not None
    assert auto.schema["maxItems"] == 4
    two = '[{"name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": {}}]'
    parsed = parse_output(TOOL_OPEN + two + TOOL_CLOSE, auto)
    assert [c.name for c in parsed.tool_calls] == ["f", "g"]
    assert len({c.id for c in parsed.tool_calls}) == 2
    required = constraint_for(
        _req(tools=[TOOL, G], tool_choice="required", parallel_tool_calls=True)
    )
    assert required is not None
    assert required.schema["type"] == "array"
    assert [c.name for c in parse_output(two, required).tool_calls] == ["f", "g"]
    with pytest.raises(SchemaError):
        parse_output("[]", required)
    five = "[" + ", ".join(['{"name": "f", "arguments": {}}'] * 5) + "]"
    with pytest.raises(SchemaError):
        parse_output(five, required)
    single = constraint_for(_req(tools=[TOOL], tool_choice="required", parallel_tool_calls=False))
    assert single is not None
    assert single.schema["type"] == "object"


def test_request_validation_rejects_inconsistent_tool_use() -> None:
    with pytest.raises(ValueError, match="unknown function"):
        _req(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "zzz"}})
    with pytest.raises(ValueError, match="either tools or a JSON"):
        _req(tools=[TOOL], response_format={"type": "json_object"})


def test_earlier_calls_render_in_the_format_the_model_writes() -> None:
    constraint = constraint_for(_req(tools=[TOOL]))
    rendered = render_tool_calls([("f", '{"x": 1}')])
    # One call reads as it always has: the list of one call.
    assert rendered == '<tool_call>[{"name": "f", "arguments": {"x": 1}}]</tool_call>'
    assert parse_output(rendered, constraint).tool_calls[0].arguments == '{"x": 1}'
    several = constraint_for(_req(tools=[TOOL], parallel_tool_calls=True))
    both = render_tool_calls([("f", '{"x": 1}'), ("f", '{"x": 2}')])
    assert [c.arguments for c in parse_output(both, several).tool_calls] == ['{"x": 1}', '{"x": 2}']


def test_a_tools_defs_move_to_the_root_of_the_call_schema() -> None:
    params = {
        "$defs": {"addr": {"type": "object", "properties": {"zip": {"type": "string"}}}},
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/addr"}},
    }
    tool: Any = {"type": "function", "function": {"name": "h", "parameters": params}}
    constraint = constraint_for(_req(tools=[tool, G], tool_choice="required"))
    assert constraint is not None
    assert set(constraint.schema["$defs"]) == {"h.addr"}
    home = constraint.schema["anyOf"][0]["properties"]["arguments"]["properties"]["home"]
    assert home == {"$ref": "#/$defs/h.addr"}
    good = '{"name": "h", "arguments": {"home": {"zip": "12345"}}}'
    assert parse_output(good, constraint).tool_calls[0].name == "h"
    with pytest.raises(SchemaError):
        parse_output('{"name": "h", "arguments": {"home": {"zip": 5}}}', constraint)
