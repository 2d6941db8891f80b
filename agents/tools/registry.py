"""Tools: typed Python functions whose JSON schema comes from their signature and docstring.

A tool's first parameter may be annotated `ToolContext`; it carries the run's identity and the
injected services and is left out of the schema. Every other parameter must be str, int, float,
bool, a Literal, a list of those, a pydantic model, `X | None`, or `Annotated[X, Field(...)]`.
Arguments are validated with a pydantic model built from the signature, so the schema the model
sees and the validation it gets cannot drift apart. docs/tools.md is the deployer's guide.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.metadata
import inspect
import json
import logging
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from agents.errors import (
    DuplicateTool,
    InvalidToolArguments,
    ToolDefinitionError,
    ToolError,
    ToolFailed,
    ToolTimeout,
    UnknownTool,
)
from agents.tools.context import ToolContext
from agents.tools.schema import parameter_field, parse_docstring, without_titles

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "agentmill.tools"
DEFAULT_TIMEOUT_S = 30.0
# Model output is untrusted: refuse absurd argument strings before parsing them.
MAX_ARGUMENT_CHARS = 100_000
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what OpenAI-compatible APIs accept
_MAX_LISTED_ERRORS = 5


@dataclass(frozen=True)
class Tool:
    """A function the model can call, with its derived schema and argument validator."""

    name: str
    """Unique name the model calls it by."""
    description: str
    """First paragraph of the docstring."""
    function: Callable[..., Any]
    """The function itself (sync functions run in a thread)."""
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    arguments_model: type[BaseModel] | None
    """Validates a Python tool's arguments (its schema was generated from it); None: a tool
    whose schema came from elsewhere (an MCP server), whose arguments the schema validates."""
    takes_context: bool
    """Whether the first parameter is the ToolContext."""
    timeout_s: float
    """Limit for one call."""
    idempotent: bool = False
    """Running the call twice has the effect of running it once (it reads, or it dedupes by
    `ctx.idempotency_key`): a call that a dead worker may have started is run again. False:
    such a call is not repeated, and the model is told its outcome is unknown."""

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool definition."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }

    def validate(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the function; raises InvalidToolArguments."""
        data = _parse_arguments(self.name, arguments)
        if self.arguments_model is None:
            return self._by_schema(data)
        try:
            parsed = self.arguments_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidToolArguments(self.name, self._describe(exc)) from None
        return {
            info.alias or key: getattr(parsed, key)
            for key, info in self.arguments_model.model_fields.items()
        }

    async def call(self, ctx: ToolContext, arguments: str | Mapping[str, Any]) -> str:
        """Validate, run within the timeout, and render the result as text for the model."""
        kwargs = self.validate(arguments)
        args = (ctx,) if self.takes_context else ()
        try:
            async with asyncio.timeout(self.timeout_s) as scope:
                if inspect.iscoroutinefunction(self.function):
                    result = await self.function(*args, **kwargs)
                else:
                    # A sync tool cannot be interrupted: on timeout its thread runs on and
                    # its result is dropped. Tools that block for long should be async.
                    result = await asyncio.to_thread(self.function, *args, **kwargs)
            return result if isinstance(result, str) else pydantic_core.to_json(result).decode()
        except ToolError:
            raise
        except TimeoutError as exc:
            if scope.expired():
                raise ToolTimeout(self.name, self.timeout_s) from exc
            raise self._failed(exc) from exc
        except Exception as exc:
            raise self._failed(exc) from exc

    def _by_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        errors = sorted(
            jsonschema.Draft202012Validator(self.parameters).iter_errors(data),
            key=lambda e: list(e.absolute_path),
        )
        if not errors:
            return data
        problems = [
            f"{'.'.join(str(p) for p in err.absolute_path) or 'arguments'}: {err.message}"
            for err in errors[:_MAX_LISTED_ERRORS]
        ]
        if len(errors) > _MAX_LISTED_ERRORS:
            problems.append(f"and {len(errors) - _MAX_LISTED_ERRORS} more")
        raise InvalidToolArguments(self.name, f"{'; '.join(problems)}. {self._expected()}")

    def _failed(self, exc: Exception) -> ToolFailed:
        log.warning("tool %r raised %s", self.name, type(exc).__name__, exc_info=exc)
        return ToolFailed(self.name, type(exc).__name__)

    def _describe(self, exc: ValidationError) -> str:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:_MAX_LISTED_ERRORS]
        ]
        if exc.error_count() > _MAX_LISTED_ERRORS:
            problems.append(f"and {exc.error_count() - _MAX_LISTED_ERRORS} more")
        return f"{'; '.join(problems)}. {self._expected()}"

    def _expected(self) -> str:
        required = set(self.parameters.get("required", []))
        expected = ", ".join(
            f"{name}{' (required)' if name in required else ''}"
            for name in self.parameters.get("properties", {})
        )
        return f"Parameters: {expected or 'none'}"


def _parse_arguments(tool: str, arguments: str | Mapping[str, Any]) -> Any:
    if not isinstance(arguments, str):
        return dict(arguments)
    if len(arguments) > MAX_ARGUMENT_CHARS:
        raise InvalidToolArguments(
            tool, f"{len(arguments)} characters; at most {MAX_ARGUMENT_CHARS}"
        )
    if not arguments.strip():
        return {}  # some models send "" for a tool without parameters
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InvalidToolArguments(
            tool, f"not valid JSON ({exc.msg} at position {exc.pos})"
        ) from None
    except RecursionError:
        raise InvalidToolArguments(tool, "JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidToolArguments(tool, f"expected a JSON object, got {type(data).__name__}")
    return data


def tool(
    function: Callable[..., Any],
    *,
    name: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    idempotent: bool = False,
) -> Tool:
    """Make a Tool of a typed function; raises ToolDefinitionError when it cannot be one.
    Declare `idempotent` only when running a call twice does no more than running it once."""
    tool_name = str(name or getattr(function, "__name__", ""))
    if not _NAME.fullmatch(tool_name):
        raise ToolDefinitionError(tool_name, "a name must match [A-Za-z0-9_-]{1,64}")
    if timeout_s <= 0:
        raise ToolDefinitionError(tool_name, "timeout_s must be positive")
    description, arg_docs = parse_docstring(inspect.getdoc(function) or "")
    if not description:
        raise ToolDefinitionError(tool_name, "needs a docstring: its first paragraph is shown")
    try:
        hints = typing.get_type_hints(function, include_extras=True)
        params = list(inspect.signature(function).parameters.values())
    except (NameError, TypeError, ValueError) as exc:
        raise ToolDefinitionError(tool_name, f"cannot read the signature: {exc}") from exc
    takes_context = bool(params) and hints.get(params[0].name) is ToolContext
    params = params[1:] if takes_context else params
    # Fields get neutral names and the parameter names as aliases: a parameter may be called
    # `schema`, `json` or `model_name` without clashing with BaseModel's own attributes.
    fields: dict[str, Any] = {
        f"p{index}": parameter_field(tool_name, param, hints.get(param.name), arg_docs)
        for index, param in enumerate(params)
    }
    if unknown := sorted(set(arg_docs) - {param.name for param in params}):
        raise ToolDefinitionError(tool_name, f"docstring documents unknown parameters {unknown}")
    model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    return Tool(
        name=tool_name,
        description=description,
        function=function,
        parameters=without_titles(model.model_json_schema()),
        arguments_model=model,
        takes_context=takes_context,
        timeout_s=timeout_s,
        idempotent=idempotent,
    )


class ToolRegistry:
    """Tools by name; duplicate names are refused."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool | Callable[..., Any]) -> Tool:
        """Add a Tool, or a function made into one; raises DuplicateTool."""
        new = item if isinstance(item, Tool) else tool(item)
        if new.name in self._tools:
            raise DuplicateTool(new.name)
        self._tools[new.name] = new
        return new

    def get(self, name: str) -> Tool:
        """The tool called `name`; raises UnknownTool."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(name, self.names()) from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A registry of just these tools (an agent's own); raises UnknownTool."""
        return ToolRegistry(self.get(name) for name in names)

    def schemas(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Function-tool definitions for `names` (default: all); raises UnknownTool."""
        return [self.get(name).schema() for name in (self.names() if names is None else names)]

    def validate(self, name: str, arguments: str) -> dict[str, Any]:
        """Parsed arguments of a call; raises UnknownTool or InvalidToolArguments."""
        return self.get(name).validate(arguments)


def load_entry_point_tools(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> list[Tool]:
    """Deployers' tools from the `agentmill.tools` entry points (a function, Tool or list)."""
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    loaded: list[Tool] = []
    for entry in sorted(entry_points, key=lambda e: (e.name, e.value)):
        try:
            target = entry.load()
        except Exception as exc:  # any import-time failure of a deployer's package
            raise ToolDefinitionError(
                entry.name, f"entry point {entry.value!r} failed to load: {exc!r}"
            ) from exc
        for item in target if isinstance(target, list | tuple) else [target]:
            if not isinstance(item, Tool) and not callable(item):
                raise ToolDefinitionError(
                    entry.name,
                    f"entry point {entry.value!r} holds a {type(item).__name__}, "
                    "not a function, Tool or list of them",
                )
            loaded.append(item if isinstance(item, Tool) else tool(item))
    return loaded


def load_module_tools(modules: Iterable[str]) -> list[Tool]:
    """The tools defined in these modules: every module-level `Tool` (made with `@tool(...)`)
    and every function listed in the module's `TOOLS` sequence, if it has one."""
    loaded: list[Tool] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # any import-time failure of a deployer's module
            raise ToolDefinitionError(name, f"module {name!r} failed to import: {exc!r}") from exc
        listed = getattr(module, "TOOLS", None)
        if listed is not None:
            loaded.extend(item if isinstance(item, Tool) else tool(item) for item in listed)
        else:
            loaded.extend(value for value in vars(module).values() if isinstance(value, Tool))
    return loaded
