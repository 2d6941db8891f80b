"""From a server's listing to the tools a run offers: names the model can call, schemas the
bundled model can be constrained by, and results rendered as the text the model reads.

A listed tool is offered as `<server>__<tool>` (characters outside [A-Za-z0-9_-] become `_`).
One that cannot be offered keeps a `problem` in the listing the API shows: a name that does
not fit in 64 characters or clashes with another, or an input schema that is not a valid JSON
Schema of an object, is too large, or refers to documents outside itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from mcp.types import CallToolResult, Tool

from agents.errors import ToolError
from agents.mcp.records import SEPARATOR, ListedTool, McpEndpoint
from agents.records import McpServerUse
from agents.tools.context import ToolContext
from agents.tools.registry import Tool as AgentTool

MAX_SCHEMA_CHARS = 20_000
MAX_DESCRIPTION_CHARS = 1_024
MAX_RESULT_CHARS = 20_000
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OUTSIDE = re.compile(r"[^A-Za-z0-9_-]")

CallFunction = Callable[[McpEndpoint, str, dict[str, Any], str | None, float], Any]
"""(endpoint, the server's tool name, arguments, idempotency key, timeout) -> awaitable str."""


def exposed_name(server: str, tool: str) -> str | None:
    """The name the model calls the tool by, or None when it would not fit."""
    name = f"{server}{SEPARATOR}{_OUTSIDE.sub('_', tool)}"
    return name if _NAME.fullmatch(name) else None


def schema_problem(schema: Any) -> str | None:
    """Why an input schema cannot be offered (None: it can)."""
    if not isinstance(schema, dict):
        return "the input schema is not a JSON object"
    if schema.get("type", "object") != "object":
        return f"the input schema describes a {schema.get('type')!r}, not an object"
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_CHARS:
        return f"the input schema is {len(text)} characters long; at most {MAX_SCHEMA_CHARS}"
    if re.search(r'"\$(ref|dynamicRef)"\s*:\s*"(?!#)', text):
        return "the input schema refers to documents outside itself"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return f"the input schema is invalid at {where}: {exc.message}"
    return None


def listing(server: str, tools: Sequence[Tool]) -> list[ListedTool]:
    """The server's tools as agentmill lists them, each offered or with its problem."""
    listed: list[ListedTool] = []
    taken: set[str] = set()
    for tool in tools:
        schema = dict(tool.input_schema or {"type": "object"})
        schema.setdefault("type", "object")
        exposed = exposed_name(server, tool.name)
        problem = schema_problem(schema)
        if exposed is None:
            problem = f"the name {server}{SEPARATOR}{tool.name} does not fit in 64 characters"
        elif exposed in taken:
            problem = f"its name {exposed} is taken by another of the server's tools"
        hints = tool.annotations
        read_only = bool(hints and (hints.read_only_hint or hints.idempotent_hint))
        listed.append(
            ListedTool(
                name=tool.name,
                exposed=None if problem else exposed,
                description=(tool.description or "")[:MAX_DESCRIPTION_CHARS],
                input_schema=schema,
                read_only=read_only,
                problem=problem,
            )
        )
        if exposed and not problem:
            taken.add(exposed)
    return listed


def render(result: CallToolResult) -> str:
    """The text the model reads for a result; raises ToolError for an error result."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} ({getattr(block, 'mime_type', 'unknown type')}), not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {getattr(resource, 'uri', '')}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    if len(text) > MAX_RESULT_CHARS:
        text = f"{text[:MAX_RESULT_CHARS]}\n[cut: the result was {len(text)} characters long]"
    if result.is_error:
        raise ToolError(text or "the tool reported an error without a message")
    return text


def offered(
    endpoint: McpEndpoint,
    listed: Sequence[ListedTool],
    use: McpServerUse,
    call: CallFunction,
    timeout_s: float,
) -> list[AgentTool]:
    """The tools of one server that an agent's use of it offers, ready to register."""
    wanted = None if use.tools is None else set(use.tools)
    tools = []
    for item in listed:
        if item.exposed is None or (wanted is not None and item.name not in wanted):
            continue
        tools.append(
            AgentTool(
                name=item.exposed,
                description=item.description or f"{item.name} (MCP server {endpoint.name})",
                function=_caller(endpoint, item.name, call, timeout_s),
                parameters=item.input_schema,
                arguments_model=None,
                takes_context=True,
                timeout_s=timeout_s + 5.0,  # the MCP call's own limit ends it first
                idempotent=item.read_only,
            )
        )
    return tools


def _caller(
    endpoint: McpEndpoint, name: str, call: CallFunction, timeout_s: float
) -> Callable[..., Any]:
    async def call_tool(ctx: ToolContext, **arguments: Any) -> str:
        return str(await call(endpoint, name, arguments, ctx.idempotency_key, timeout_s))

    call_tool.__name__ = name
    return call_tool
