"""What a request asks the output to be (free text, JSON, a tool call), and reading it back.

Engines turn an `OutputConstraint` into constrained decoding (llama.cpp: a grammar) or into
validation; the server turns the finished text into OpenAI's `content` / `tool_calls`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from inference.decoding.schema import parse_and_validate
from inference.errors import SchemaError
from inference.wire import ChatCompletionRequest, NamedToolChoice, Tool

TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"
MAX_PARALLEL_CALLS = 4
"""Most tool calls one reply may hold when the request allows several (parallel_tool_calls)."""

ConstraintKind = Literal["json", "tool_call", "tool_or_text"]


@dataclass(frozen=True)
class OutputConstraint:
    """The shape the output must take.

    json:          the whole output is a JSON value matching `schema`.
    tool_call:     the whole output is `{"name": ..., "arguments": {...}}` matching `schema`,
                   or, when several calls are allowed, a JSON list of 1-4 such objects.
    tool_or_text:  either `<tool_call>` + a JSON list of such objects + `</tool_call>` (one
                   object unless several calls are allowed), or plain text that does not
                   start with `<`.
    """

    kind: ConstraintKind
    schema: dict[str, Any]


@dataclass(frozen=True)
class ParsedToolCall:
    """A tool call read from the model's output."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ParsedOutput:
    """The model's output as OpenAI fields."""

    content: str | None
    tool_calls: list[ParsedToolCall]


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite_refs(v, prefix) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str):
            for folder in ("#/$defs/", "#/definitions/"):
                if ref.startswith(folder):
                    out["$ref"] = "#/$defs/" + prefix + ref[len(folder) :]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def _call_schema(tools: list[Tool]) -> dict[str, Any]:
    # A tool's `$defs` move to the root of the call schema (its `$ref`s point at the root).
    defs: dict[str, Any] = {}
    options = []
    for tool in tools:
        params = dict(tool.function.parameters)
        own = {**params.pop("definitions", {}), **params.pop("$defs", {})}
        prefix = tool.function.name + "."
        if own:
            params = _rewrite_refs(params, prefix)
            defs.update({prefix + k: _rewrite_refs(v, prefix) for k, v in own.items()})
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.function.name}, "arguments": params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {**schema, "$defs": defs} if defs else schema


def _calls_schema(tools: list[Tool], most: int) -> dict[str, Any]:
    """A JSON list of 1 to `most` calls (the `$defs` stay at the root)."""
    one = _call_schema(tools)
    defs = one.pop("$defs", None)
    schema: dict[str, Any] = {"type": "array", "items": one, "minItems": 1, "maxItems": most}
    return {**schema, "$defs": defs} if defs else schema


def calls_allowed(request: ChatCompletionRequest) -> int:
    """How many tool calls one reply may hold: several only when the request sets
    `parallel_tool_calls: true` (the bundled model writes one call unless asked)."""
    return MAX_PARALLEL_CALLS if request.parallel_tool_calls else 1


def constraint_for(request: ChatCompletionRequest) -> OutputConstraint | None:
    """The constraint a request implies, or None for free text."""
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        return OutputConstraint("json", {"type": "object"})
    if fmt is not None and fmt.type == "json_schema":
        assert fmt.json_schema is not None
        return OutputConstraint("json", fmt.json_schema.schema_)
    tools = offered_tools(request)
    if not tools:
        return None
    choice, most = request.tool_choice, calls_allowed(request)
    if isinstance(choice, NamedToolChoice):
        tools = [t for t in tools if t.function.name == choice.function.name]
    if isinstance(choice, NamedToolChoice) or choice == "required":
        schema = _call_schema(tools) if most == 1 else _calls_schema(tools, most)
        return OutputConstraint("tool_call", schema)
    return OutputConstraint("tool_or_text", _calls_schema(tools, most))


def offered_tools(request: ChatCompletionRequest) -> list[Tool]:
    """The tools the model is shown: none when tool_choice is "none"."""
    if not request.tools or request.tool_choice == "none":
        return []
    return list(request.tools)


# With `tool_choice: auto` the tools are described the way SmolLM2 (the bundled model) was
# trained to see them, which is what lets it tell a request that needs a call from one that
# does not (measured: docs/benchmarks.md); the call format is ours, one call per reply.
_AUTO_PROMPT = """You are an expert in composing functions. You are given a question and a set \
of possible functions.
Based on the question, you will need to make a function/tool call to achieve the purpose.
If none of the functions can be used, point it out and answer in plain text.
You have access to the following tools:
<tools>{tools}</tools>
To call a function, the output MUST strictly adhere to the following format, and NO other \
text MUST be included:
{open}[{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}}]\
{close}{several}"""
# A two-call example made the bundled model split one-call questions in two (2 of 8) and
# still never split a two-call one (bench/parallel_tool_calls.py): one sentence it is.
_SEVERAL = """
To call several functions at once, put one such object per call in the list."""


def tools_prompt(tools: list[Tool], constraint: OutputConstraint | None) -> str:
    """System-prompt text that describes the tools and how to call one."""
    specs = []
    for tool in tools:
        spec: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            spec["description"] = tool.function.description
        spec["parameters"] = tool.function.parameters
        specs.append(spec)
    several_allowed = constraint is not None and constraint.schema.get("maxItems", 1) > 1
    if constraint is not None and constraint.kind == "tool_or_text":
        return _AUTO_PROMPT.format(
            tools=json.dumps(specs),
            open=TOOL_OPEN,
            close=TOOL_CLOSE,
            several=_SEVERAL if several_allowed else "",
        )
    lines = ["You can call these functions:", *(json.dumps(s) for s in specs)]
    if several_allowed:
        lines.append(
            'Reply with a JSON list of {"name": ..., "arguments": {...}} objects, one per call.'
        )
    else:
        lines.append('Reply with a JSON object {"name": ..., "arguments": {...}} to call one.')
    return "\n".join(lines)


def render_tool_calls(calls: list[tuple[str, str]]) -> str:
    """How an earlier assistant reply's tool calls (name, arguments) appear in the prompt, as
    the model wrote them: one `<tool_call>` holding the list of calls."""
    rendered = []
    for name, arguments in calls:
        try:
            args: Any = json.loads(arguments)
        except json.JSONDecodeError:
            args = arguments
        rendered.append({"name": name, "arguments": args})
    return TOOL_OPEN + json.dumps(rendered) + TOOL_CLOSE


def _tool_call(obj: Any) -> ParsedToolCall:
    if not isinstance(obj, dict) or "name" not in obj or "arguments" not in obj:
        raise SchemaError("tool call must be an object with name and arguments")
    return ParsedToolCall(
        id="call_" + secrets.token_hex(12),
        name=str(obj["name"]),
        arguments=json.dumps(obj["arguments"]),
    )


def _tool_calls(value: Any) -> list[ParsedToolCall]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise SchemaError("the list of tool calls is empty")
    return [_tool_call(item) for item in items]


def parse_output(text: str, constraint: OutputConstraint | None) -> ParsedOutput:
    """Read finished output; raise `SchemaError` when it does not satisfy the constraint."""
    if constraint is None:
        return ParsedOutput(text, [])
    if constraint.kind == "json":
        parse_and_validate(text, constraint.schema)
        return ParsedOutput(text, [])
    if constraint.kind == "tool_call":
        return ParsedOutput(None, _tool_calls(parse_and_validate(text, constraint.schema)))
    stripped = text.strip()
    if not stripped.startswith(TOOL_OPEN):
        return ParsedOutput(text, [])
    if not stripped.endswith(TOOL_CLOSE):
        raise SchemaError(f"tool call is not closed with {TOOL_CLOSE}")
    inner = stripped[len(TOOL_OPEN) : -len(TOOL_CLOSE)]
    return ParsedOutput(None, _tool_calls(parse_and_validate(inner, constraint.schema)))


def is_tool_call_start(text: str) -> bool:
    """Whether streamed output so far is (the start of) a tool call rather than text."""
    return text.lstrip().startswith("<")
