"""Tools: schema derivation, the registry, entry-point loading, argument validation, calls."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from agents.errors import (
    MAX_TOOL_ERROR_CHARS,
    DuplicateTool,
    InvalidToolArguments,
    ToolDefinitionError,
    ToolError,
    ToolFailed,
    ToolTimeout,
    UnknownTool,
)
from agents.tools.context import FixedClock, ToolContext, ToolServices
from agents.tools.registry import (
    ENTRY_POINT_GROUP,
    MAX_ARGUMENT_CHARS,
    Tool,
    ToolRegistry,
    load_entry_point_tools,
    tool,
)
from core.errors import AgentmillError
from inference.decoding.constraints import OutputConstraint
from inference.decoding.grammar import grammar_source
from tests.agents import sample_tools

NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CTX = ToolContext(
    tenant_id=uuid.uuid4(),
    agent_id=uuid.uuid4(),
    user_id="u1",
    services=ToolServices(clock=FixedClock(NOON), extra={"greeting": "hello"}),
)


class Location(BaseModel):
    """A place on Earth."""

    city: str
    title: str | None = None  # a property named like the schema keyword must survive


def every_type(
    ctx: ToolContext,
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    tags: list[str],
    unit: Literal["c", "f"],
    where: Location,
    limit: Annotated[int, Field(ge=1, le=10)] = 5,
    note: str | None = None,
    places: list[Location] | None = None,
) -> str:
    """Exercise every
    supported parameter type.

    More prose that is not part of the description.

    Args:
        text: Some text.
        count (int): How many,
            over two lines.
        limit: At most this many.

    Returns:
        A summary.
    """
    return f"{ctx.user_id} {text} {count} {ratio} {flag} {tags} {unit} {where.city} {limit} {note}"


def add(a: int, b: int = 2) -> int:
    """Add two integers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- schema derivation ---------------------------------------------------------------------


def test_schema_covers_every_supported_type_and_leaves_out_the_context() -> None:
    schema = tool(every_type).schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "every_type"
    assert function["description"] == "Exercise every supported parameter type."
    params = function["parameters"]
    assert params["type"] == "object"
    assert params["additionalProperties"] is False
    assert "ctx" not in params["properties"]
    assert params["required"] == ["text", "count", "ratio", "flag", "tags", "unit", "where"]
    props = params["properties"]
    assert props["text"] == {"type": "string", "description": "Some text."}
    assert props["count"] == {"type": "integer", "description": "How many, over two lines."}
    assert props["ratio"] == {"type": "number"}
    assert props["flag"] == {"type": "boolean"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["unit"] == {"type": "string", "enum": ["c", "f"]}
    assert props["where"] == {"$ref": "#/$defs/Location"}
    assert props["limit"] == {
        "type": "integer",
        "default": 5,
        "minimum": 1,
        "maximum": 10,
        "description": "At most this many.",
    }
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["places"]["anyOf"][0] == {"type": "array", "items": {"$ref": "#/$defs/Location"}}
    location = params["$defs"]["Location"]
    assert location["description"] == "A place on Earth."
    assert set(location["properties"]) == {"city", "title"}
    assert "title" not in json.dumps(params).replace('"title": {', "")


def test_schema_is_a_copy() -> None:
    made = tool(add)
    made.schema()["function"]["parameters"]["properties"].clear()
    assert "a" in made.schema()["function"]["parameters"]["properties"]


def test_tool_without_parameters() -> None:
    def ping() -> str:
        """Answer pong."""
        return "pong"

    assert tool(ping).parameters == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    assert _run(tool(ping).call(CTX, "")) == "pong"


def test_parameters_may_share_names_with_pydantic_attributes() -> None:
    def query(schema: str, json: int, model_name: str, validate: bool = False) -> str:
        """Names that a naive pydantic model would reject or warn about."""
        return f"{schema} {json} {model_name} {validate}"

    made = tool(query)
    assert list(made.parameters["properties"]) == ["schema", "json", "model_name", "validate"]
    args = '{"schema": "s", "json": 1, "model_name": "m"}'
    assert _run(made.call(CTX, args)) == "s 1 m False"
    assert "p0: Extra inputs are not permitted" in _invalid(made, '{"p0": "s"}')


def test_the_local_engine_can_constrain_a_call_to_every_derived_schema() -> None:
    for made in (tool(every_type), tool(add), tool(sample_tools.get_weather)):
        assert "x-guidance" in grammar_source(OutputConstraint("json", made.parameters))


def _doc_only(doc: str) -> Any:
    def documented(city: str) -> str:
        return city

    documented.__doc__ = doc
    return documented


def test_docstring_description_stops_at_a_section_without_a_blank_line() -> None:
    made = tool(_doc_only("Look a city up.\nArgs:\n    city: The city.\n"))
    assert made.description == "Look a city up."
    assert made.parameters["properties"]["city"]["description"] == "The city."


def test_docstring_arguments_section_may_be_spelled_parameters() -> None:
    made = tool(_doc_only("Look up.\n\nParameters:\n    city (str): Where.\n\nRaises:\n  X"))
    assert made.parameters["properties"]["city"]["description"] == "Where."


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (None, "needs a docstring"),
        ("   ", "needs a docstring"),
        ("Args:\n    city: The city.", "needs a docstring"),
        ("Look up.\n\nArgs:\n    town: A typo.", r"unknown parameters \['town'\]"),
    ],
)
def test_bad_docstrings_are_refused(doc: str | None, reason: str) -> None:
    with pytest.raises(ToolDefinitionError, match=reason):
        tool(_doc_only(doc or ""))


def test_custom_name_and_timeout() -> None:
    made = tool(add, name="plus", timeout_s=1.5)
    assert (made.name, made.timeout_s, made.schema()["function"]["name"]) == ("plus", 1.5, "plus")


def _typed(annotation: Any) -> Any:
    def typed(value: Any) -> str:
        """Take one value."""
        return ""

    typed.__annotations__ = {"value": annotation, "return": str}
    return typed


@pytest.mark.parametrize(
    "annotation",
    [
        dict,
        dict[str, int],
        Any,
        tuple[int, int],
        list[list[int]],
        int | str,
        list,
        set[str],
        Literal[None],
        list[int | None],
        datetime,
        bytes,
    ],
)
def test_unsupported_parameter_types_are_refused(annotation: Any) -> None:
    with pytest.raises(ToolDefinitionError, match="unsupported type"):
        tool(_typed(annotation))


def test_unsupported_signatures_are_refused() -> None:
    def untyped(city):  # type: ignore[no-untyped-def]
        """Untyped."""

    def star(*cities: str) -> None:
        """Star args."""

    def keywords(**cities: str) -> None:
        """Keyword args."""

    def positional(city: str, /) -> None:
        """Positional only."""

    def late_context(city: str, ctx: ToolContext) -> None:
        """Context second."""

    cases: list[tuple[Callable[..., Any], str]] = [
        (untyped, "needs a type annotation"),
        (star, "cannot come from JSON"),
        (keywords, "cannot come from JSON"),
        (positional, "cannot come from JSON"),
        (late_context, "must be the first parameter"),
        (lambda: None, "a name must match"),
    ]
    for function, reason in cases:
        with pytest.raises(ToolDefinitionError, match=reason):
            tool(function)
    for bad_name in ("has space", "trailing_newline\n", "x" * 65):
        with pytest.raises(ToolDefinitionError, match="a name must match"):
            tool(add, name=bad_name)
    with pytest.raises(ToolDefinitionError, match="must be positive"):
        tool(add, timeout_s=0)


def test_definition_errors_carry_data_and_share_the_root() -> None:
    with pytest.raises(ToolDefinitionError) as caught:
        tool(add, timeout_s=-1)
    assert caught.value.tool == "add"
    assert isinstance(caught.value, AgentmillError)


# --- registry ------------------------------------------------------------------------------


def test_registry_registers_gets_and_lists_schemas() -> None:
    registry = ToolRegistry([add, sample_tools.SLOW_WEATHER])
    assert registry.names() == ["add", "slow_weather"]
    assert "add" in registry
    assert len(registry) == 2
    assert registry.get("add").name == "add"
    schemas = registry.schemas(["slow_weather"])
    assert [s["function"]["name"] for s in schemas] == ["slow_weather"]
    assert len(registry.schemas()) == 2
    assert registry.validate("add", '{"a": 1}') == {"a": 1, "b": 2}


def test_registry_refuses_duplicates() -> None:
    registry = ToolRegistry([add])
    with pytest.raises(DuplicateTool) as caught:
        registry.register(tool(add))
    assert caught.value.tool == "add"
    assert registry.names() == ["add"]


def test_registry_unknown_names() -> None:
    registry = ToolRegistry([add, sample_tools.shout])
    with pytest.raises(UnknownTool) as caught:
        registry.get("x" * 500)
    assert caught.value.available == ["add", "shout"]
    assert caught.value.message.endswith("available tools: add, shout")
    assert len(caught.value.message) < 150  # a garbage name is cut, not echoed in full
    with pytest.raises(UnknownTool):
        registry.schemas(["add", "nope"])
    with pytest.raises(UnknownTool):
        registry.subset(["nope"])


def test_subset_holds_only_the_named_tools() -> None:
    agent_tools = ToolRegistry([add, sample_tools.shout, sample_tools.whisper]).subset(["shout"])
    assert agent_tools.names() == ["shout"]
    with pytest.raises(UnknownTool):
        agent_tools.validate("add", '{"a": 1}')


# --- entry points --------------------------------------------------------------------------


def _entry(name: str, attribute: str, module: str = "tests.agents.sample_tools") -> Any:
    return importlib.metadata.EntryPoint(
        name=name, value=f"{module}:{attribute}", group=ENTRY_POINT_GROUP
    )


def test_entry_points_may_hold_a_function_a_list_or_a_tool() -> None:
    loaded = load_entry_point_tools(
        [
            _entry("weather", "get_weather"),
            _entry("text", "TEXT_TOOLS"),
            _entry("slow", "SLOW_WEATHER"),
        ]
    )
    # ordered by entry-point name, so start-up is reproducible
    assert [t.name for t in loaded] == ["slow_weather", "shout", "whisper", "get_weather"]
    assert loaded[0].timeout_s == 2.5
    assert ToolRegistry(loaded).get("get_weather").description == "Forecast for a city."


def test_entry_point_failures_name_the_entry_point() -> None:
    with pytest.raises(ToolDefinitionError, match="failed to load") as caught:
        load_entry_point_tools([_entry("broken", "thing", module="no_such_module_here")])
    assert caught.value.tool == "broken"
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ToolDefinitionError, match="holds a int"):
        load_entry_point_tools([_entry("number", "NOT_A_TOOL")])


def test_two_entry_points_with_one_tool_name_clash_in_the_registry() -> None:
    loaded = load_entry_point_tools([_entry("a", "get_weather"), _entry("b", "get_weather")])
    with pytest.raises(DuplicateTool):
        ToolRegistry(loaded)


def test_the_default_is_the_agentmill_tools_group(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def entry_points(*, group: str) -> Iterable[importlib.metadata.EntryPoint]:
        asked.append(group)
        return [_entry("weather", "get_weather")]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert [t.name for t in load_entry_point_tools()] == ["get_weather"]
    assert asked == ["agentmill.tools"]


# --- argument validation -------------------------------------------------------------------


def _invalid(made: Tool, arguments: str) -> str:
    with pytest.raises(InvalidToolArguments) as caught:
        made.validate(arguments)
    assert caught.value.tool == made.name
    return caught.value.message


def test_invalid_arguments_become_clear_messages() -> None:
    made = tool(add)
    assert "not valid JSON (Expecting value at position 6)" in _invalid(made, '{"a": }')
    assert "expected a JSON object, got list" in _invalid(made, "[1, 2]")
    missing = _invalid(made, "{}")
    assert missing == (
        "invalid arguments for tool 'add': a: Field required. Parameters: a (required), b"
    )
    assert "a: Input should be a valid integer" in _invalid(made, '{"a": "five"}')
    assert "c: Extra inputs are not permitted" in _invalid(made, '{"a": 1, "c": 3}')
    assert "nested too deeply" in _invalid(made, "[" * 40_000 + "]" * 40_000)
    assert f"at most {MAX_ARGUMENT_CHARS}" in _invalid(made, " " * (MAX_ARGUMENT_CHARS + 1))


def test_validation_errors_are_listed_up_to_a_bound() -> None:
    message = _invalid(
        tool(every_type),
        json.dumps({"unit": "kelvin", "limit": 99, "x1": 1, "x2": 2, "x3": 3, "x4": 4}),
    )
    assert "; and 7 more. Parameters: text (required)" in message
    assert len(message) <= MAX_TOOL_ERROR_CHARS


def test_literal_and_nested_models_are_validated() -> None:
    made = tool(every_type)
    good = {
        "text": "t",
        "count": "3",  # lax: a numeric string is accepted for an integer
        "ratio": 1,
        "flag": True,
        "tags": ["a"],
        "unit": "c",
        "where": {"city": "Oslo"},
    }
    kwargs = made.validate(json.dumps(good))
    assert kwargs["count"] == 3
    assert kwargs["where"] == Location(city="Oslo")
    assert "unit: Input should be 'c' or 'f'" in _invalid(made, json.dumps({**good, "unit": "k"}))
    assert "where.city: Field required" in _invalid(made, json.dumps({**good, "where": {}}))
    assert "limit: Input should be less than or equal to 10" in _invalid(
        made, json.dumps({**good, "limit": 11})
    )


def test_validate_accepts_an_already_parsed_mapping() -> None:
    assert tool(add).validate({"a": 5, "b": 6}) == {"a": 5, "b": 6}


# --- calls ---------------------------------------------------------------------------------


def test_sync_call_with_context_renders_text() -> None:
    result = _run(
        tool(every_type).call(
            CTX,
            '{"text": "hi", "count": 2, "ratio": 0.5, "flag": false, "tags": [], "unit": "f",'
            ' "where": {"city": "Rome"}}',
        )
    )
    assert result == "u1 hi 2 0.5 False [] f Rome 5 None"


def test_async_call_and_non_text_results_become_json() -> None:
    async def lookup(ctx: ToolContext, city: str) -> dict[str, Any]:
        """Look a city up."""
        await asyncio.sleep(0)
        return {"city": city, "when": ctx.services.clock.now(), "note": ctx.services.extra}

    result = _run(tool(lookup).call(CTX, '{"city": "Paris"}'))
    assert json.loads(result) == {
        "city": "Paris",
        "when": "2025-06-01T12:00:00Z",
        "note": {"greeting": "hello"},
    }
    assert _run(tool(add).call(CTX, '{"a": 40}')) == "42"
    assert _run(tool(oslo).call(CTX, "{}")) == '{"city":"Oslo","title":null}'


def oslo() -> Location:
    """Return a pydantic model."""
    return Location(city="Oslo")


def test_invalid_arguments_are_raised_before_the_function_runs() -> None:
    ran: list[int] = []

    def record(n: int) -> None:
        """Record n."""
        ran.append(n)

    with pytest.raises(InvalidToolArguments):
        _run(tool(record).call(CTX, '{"n": "x"}'))
    assert ran == []


def test_tool_errors_pass_through_unchanged() -> None:
    def refuse(city: str) -> str:
        """Refuse."""
        raise ToolError(f"no forecast for {city}")

    with pytest.raises(ToolError) as caught:
        _run(tool(refuse).call(CTX, '{"city": "Atlantis"}'))
    assert type(caught.value) is ToolError
    assert caught.value.message == "no forecast for Atlantis"


def test_other_exceptions_reach_the_model_as_their_type_only() -> None:
    async def leak() -> str:
        """Fail with a secret in the message."""
        raise RuntimeError("password=hunter2")

    with pytest.raises(ToolFailed) as caught:
        _run(tool(leak).call(CTX, "{}"))
    assert caught.value.message == "tool 'leak' failed with an internal error (RuntimeError)"
    assert "hunter2" not in caught.value.message
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_unserialisable_results_are_a_tool_failure() -> None:
    def opaque() -> object:
        """Return something JSON cannot hold."""
        return object()

    with pytest.raises(ToolFailed, match="PydanticSerializationError"):
        _run(tool(opaque).call(CTX, "{}"))


def test_async_tool_past_its_timeout() -> None:
    async def stall() -> str:
        """Never finish in time."""
        await asyncio.sleep(10)
        return "late"

    started = time.monotonic()
    with pytest.raises(ToolTimeout) as caught:
        _run(tool(stall, timeout_s=0.05).call(CTX, "{}"))
    assert time.monotonic() - started < 2
    assert (caught.value.tool, caught.value.seconds) == ("stall", 0.05)
    assert caught.value.message == "tool 'stall' timed out after 0.05 s"


def test_sync_tool_past_its_timeout() -> None:
    def block() -> str:
        """Block the thread."""
        time.sleep(0.2)
        return "late"

    with pytest.raises(ToolTimeout):
        _run(tool(block, timeout_s=0.05).call(CTX, "{}"))


def test_a_timeout_raised_inside_the_tool_is_not_the_tool_timeout() -> None:
    async def upstream() -> str:
        """Its own HTTP call timed out."""
        raise TimeoutError("upstream")

    with pytest.raises(ToolFailed, match="TimeoutError"):
        _run(tool(upstream, timeout_s=5).call(CTX, "{}"))


def test_tool_error_messages_are_bounded() -> None:
    assert len(ToolError("x" * 10_000).message) == MAX_TOOL_ERROR_CHARS
