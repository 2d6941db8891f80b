"""Deriving a tool's JSON schema from its signature and its Google-style docstring."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents.errors import ToolDefinitionError
from agents.tools.context import ToolContext

_ARG_LINE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SCALARS: tuple[type, ...] = (str, int, float, bool)
_ARG_SECTIONS = frozenset({"Args:", "Arguments:", "Parameters:"})
_SECTIONS = _ARG_SECTIONS | {"Returns:", "Raises:", "Yields:", "Example:", "Examples:", "Note:"}


def parameter_field(
    tool_name: str, param: inspect.Parameter, hint: Any, docs: Mapping[str, str]
) -> tuple[Any, Any]:
    """The pydantic field for one parameter; ToolDefinitionError when it cannot be one."""
    if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        raise ToolDefinitionError(
            tool_name,
            f"parameter {param.name!r}: *args, **kwargs and "
            "positional-only parameters cannot come from JSON",
        )
    if hint is None:
        raise ToolDefinitionError(tool_name, f"parameter {param.name!r} needs a type annotation")
    if hint is ToolContext:
        raise ToolDefinitionError(tool_name, "ToolContext must be the first parameter")
    if not supported(hint):
        raise ToolDefinitionError(
            tool_name, f"parameter {param.name!r}: unsupported type {hint!r} (see docs/tools.md)"
        )
    default = ... if param.default is param.empty else param.default
    return hint, Field(default, alias=param.name, description=docs.get(param.name))


def supported(hint: Any, *, in_list: bool = False) -> bool:
    """Whether a type annotation can be filled from JSON arguments."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return supported(args[0], in_list=in_list)
    if origin is Literal:
        return all(isinstance(v, _SCALARS) for v in args)
    if origin is list:
        return not in_list and len(args) == 1 and supported(args[0], in_list=True)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return not in_list and len(args) == 2 and len(rest) == 1 and supported(rest[0])
    if origin is None and isinstance(hint, type):
        return hint in _SCALARS or issubclass(hint, BaseModel)
    return False


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and the Google-style `Args:` descriptions by parameter name."""
    lines = doc.strip().splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or line.strip() in _SECTIONS:
            break
        summary.append(line.strip())
    args: dict[str, str] = {}
    section_indent: int | None = None
    item_indent: int | None = None
    current: str | None = None
    for line in lines:
        indent, text = len(line) - len(line.lstrip()), line.strip()
        if section_indent is None:
            if text in _ARG_SECTIONS:
                section_indent = indent
            continue
        if not text:
            continue
        if indent <= section_indent:
            break  # the next section (Returns:, Raises:) or prose
        match = _ARG_LINE.match(text)
        if match and item_indent in (None, indent):
            item_indent, current = indent, match.group(1)
            args[current] = match.group(2)
        elif current is not None:
            args[current] = f"{args[current]} {text}".strip()
    return " ".join(summary), args


_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})


def without_titles(node: Any, *, mapping: bool = False) -> Any:
    """Drop pydantic's generated titles: noise in every prompt that carries the schema."""
    if isinstance(node, list):
        return [without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    if mapping:  # keys here are names (a property may well be called "title")
        return {key: without_titles(value) for key, value in node.items()}
    return {
        key: value
        if key in _DATA_KEYS
        else without_titles(value, mapping=key in ("properties", "$defs"))
        for key, value in node.items()
        if key != "title"
    }
