"""Requests and scoring for the tool-call benchmark: what each mode sends, and how a reply is
judged (parsed, schema-valid, exact arguments)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from jsonschema import Draft202012Validator

from bench.tool_calls_cases import CASES, Case

MODES = ("required", "named", "auto", "json_schema")


@dataclass
class Result:
    """One request's outcome."""

    server: str
    mode: str
    budget: int
    case: str
    needs_tool: bool
    status: int = 200  # HTTP status; 0 when the connection failed
    called: bool = False  # a tool call (or, for json_schema, JSON content) came back
    parsed: bool = False
    valid: bool = False
    exact: bool = False
    shortened: bool = False
    finish_reason: str = ""
    completion_tokens: int = 0
    seconds: float = 0.0
    output: str = ""

    def row(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return asdict(self)


def tool(case: Case) -> dict[str, Any]:
    """The OpenAI `tools` entry of a case's function."""
    return {
        "type": "function",
        "function": {
            "name": case.name,
            "description": case.description,
            "parameters": case.parameters,
        },
    }


def offered(index: int) -> list[Case]:
    """The case's function plus two others (fixed per case), in a fixed shuffled order."""
    n = len(CASES)
    others = [CASES[(index + 37) % n], CASES[(index + 101) % n]]
    picked = [CASES[index], *others]
    return picked[index % 3 :] + picked[: index % 3]


def request(mode: str, budget: int, prompt: str, index: int, server: str) -> dict[str, Any]:
    """The chat-completion arguments for case `index` in `mode` (prompt may be a no-tool one).

    llama-cpp-python's server takes a schema through its own `json_object` + `schema` form
    (it refuses `json_schema`), so it gets that; it has no `tool_choice: required` (HTTP 500),
    which the table reports as it is."""
    case = CASES[index]
    body: dict[str, Any] = {"max_tokens": budget, "temperature": 0}
    if mode == "json_schema":
        system = f"Fill in the arguments of {case.name} ({case.description}) as JSON."
        body["messages"] = [
            {"role": "system", "content": system},
            {"role": "user", "content": prompt},
        ]
        body["response_format"] = (
            {"type": "json_object", "schema": case.parameters}
            if server == "stock"
            else {
                "type": "json_schema",
                "json_schema": {"name": case.name, "schema": case.parameters},
            }
        )
        return body
    body["messages"] = [{"role": "user", "content": prompt}]
    if mode == "named":
        body["tools"] = [tool(case)]
        body["tool_choice"] = {"type": "function", "function": {"name": case.name}}
    else:
        body["tools"] = [tool(c) for c in offered(index)]
        body["tool_choice"] = mode
    return body


def same(a: Any, b: Any) -> bool:
    """Equal as arguments: numbers by value, strings ignoring case and outer spaces."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


def score(result: Result, reply: Any, index: int) -> None:
    """Fill `result` from an `openai` ChatCompletion."""
    case = CASES[index]
    choice = reply.choices[0]
    result.finish_reason = str(choice.finish_reason)
    result.shortened = bool((choice.model_extra or {}).get("shortened"))
    result.completion_tokens = reply.usage.completion_tokens if reply.usage else 0
    message = choice.message
    if result.mode == "json_schema":
        text = message.content or ""
        result.output = text
        result.called = bool(text.strip())
        _judge(result, text, case.parameters, case.expected, right_name=True)
        return
    calls = message.tool_calls or []
    result.called = bool(calls)
    if not calls:
        result.output = message.content or ""
        return
    fn = calls[0].function
    result.output = f"{fn.name}({fn.arguments})"
    schemas = {c.name: c.parameters for c in offered(index)} if result.mode != "named" else {}
    schemas[case.name] = case.parameters
    schema = schemas.get(fn.name)
    _judge(result, fn.arguments, schema, case.expected, right_name=fn.name == case.name)


def _judge(
    result: Result, text: str, schema: dict[str, Any] | None, expected: Any, right_name: bool
) -> None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return
    result.parsed = True
    result.valid = schema is not None and Draft202012Validator(schema).is_valid(value)
    result.exact = result.valid and right_name and same(value, expected)
