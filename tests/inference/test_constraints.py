"""Requests -> constraints, and reading outputs back as content or tool calls."""

from __future__ import annotations

from typing import Any

import pytest

from inference.constraints import constraint_for, offered_tools, parse_output
from inference.protocol import ChatCompletionRequest
from inference.schema import SchemaError

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
    call = parse_output('<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>', constraint)
    assert call.content is None
    assert call.tool_calls[0].name == "f"
    assert call.tool_calls[0].arguments == '{"x": 1}'
    with pytest.raises(SchemaError):
        parse_output('<tool_call>{"name": "f"', constraint)


def test_request_validation_rejects_inconsistent_tool_use() -> None:
    with pytest.raises(ValueError, match="unknown function"):
        _req(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "zzz"}})
    with pytest.raises(ValueError, match="either tools or a JSON"):
        _req(tools=[TOOL], response_format={"type": "json_object"})
