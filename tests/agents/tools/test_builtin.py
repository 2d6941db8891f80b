"""Built-in tools: the calculator's arithmetic and its refusals, current_time with a fixed clock."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agents.errors import ToolError
from agents.tools.builtin import (
    BUILTIN_TOOLS,
    MAX_EXPRESSION_CHARS,
    calculator,
    current_time,
    evaluate,
)
from agents.tools.context import FixedClock, ToolContext, ToolServices
from agents.tools.registry import ToolRegistry


def _ctx(now: datetime) -> ToolContext:
    return ToolContext(
        tenant_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        services=ToolServices(clock=FixedClock(now)),
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("-2 ** 2", "-4"),
        ("+-3", "-3"),
        ("0.1 + 0.2", "0.3"),
        ("1e3 + 1_000", "2000"),
        ("sqrt(16)", "4"),
        ("2 ** 0.5", "1.4142135623731"),
        ("abs(-4.5)", "4.5"),
        ("round(2.567, 2)", "2.57"),
        ("round(2.5)", "2"),
        ("min(3, 1, 2) + max(4, 9)", "10"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("log10(1000)", "3"),
        ("exp(0)", "1"),
        ("sin(0) + cos(0)", "1"),
        ("tan(pi / 4)", "1"),
        ("floor(2.7) + ceil(2.2)", "5"),
        ("2 * pi", "6.28318530717959"),
        ("  12  ", "12"),
        ("(sqrt)(4)", "2"),  # parentheses leave no trace in the tree
        ("2 ** 100", "1267650600228229401496703205376"),
        ("1" + "+1" * 240, "241"),  # long flat chains are fine
        ("(" * 50 + "1" + ")" * 50, "1"),
    ],
)
def test_arithmetic(expression: str, expected: str) -> None:
    assert calculator(expression) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "attribute access is not allowed"),
        ("().__class__", "attribute access is not allowed"),
        ("(1).real", "attribute access is not allowed"),
        ("open", "unknown name 'open'"),
        ("x + 1", "unknown name 'x'"),
        ("sqrt", "unknown name 'sqrt'"),
        ("lambda: 1", "lambda is not allowed"),
        ("[1, 2][0]", "indexing is not allowed"),
        ("1 < 2", "comparison is not allowed"),
        ("1 and 2", "and/or is not allowed"),
        ("1 if 1 else 2", "if/else is not allowed"),
        ("[i for i in range(9)]", "ListComp is not allowed"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("2j", "only numbers are allowed"),
        ("2 ^ 3", "write powers as \\*\\*"),
        ("1 << 2", "the operator LShift is not allowed"),
        ("~1", "the operator Invert is not allowed"),
        ("not 1", "the operator Not is not allowed"),
        ("print(1)", "unknown function 'print'"),
        ("abs(x=1)", "plain positional arguments only"),
        ("max(*[1])", "plain positional arguments only"),
        ("sqrt(1, 2)", "sqrt\\(\\) takes 1 argument\\(s\\), got 2"),
        ("min()", "takes 1 or more"),
        ("10 ** 10 ** 10", "10 \\*\\* 10000000000 is too large"),
        ("9 ** 9 ** 9", "is too large"),
        ("2 ** 1024", "exceeds 1024 bits"),
        ("2 ** 1000 * 2 ** 1000", "exceeds 1024 bits"),
        ("9" * 400, "exceeds 1024 bits"),
        ("2.0 ** 5000", "too large"),
        ("exp(1000)", "too large"),
        ("1e999", "not a finite number"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("1 / 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("sqrt(-1)", "math error: math domain error"),
        ("log(0)", "math error"),
        ("round(1.5, 10 ** 9)", "digits must be an integer between"),
        ("round(1.5, 0.5)", "digits must be an integer"),
        ("1 +", "not an arithmetic expression"),
        ("", "not an arithmetic expression"),
        ("1; 2", "not an arithmetic expression"),
        ("x = 1", "not an arithmetic expression"),
        ("1" + " + 1" * (MAX_EXPRESSION_CHARS // 4), "characters long; at most 500"),
        ("(" * 51 + "1" + ")" * 51, "parentheses are nested more than 50 deep"),
        ("(" * 300, "parentheses are nested more than 50 deep"),
        ("-" * 300 + "1", "nests operations more than 250 levels deep"),
    ],
)
def test_refusals(expression: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason):
        calculator(expression)


def test_refusals_are_quick() -> None:
    started = time.monotonic()
    for expression in ("10 ** 10 ** 10", "9 ** 9 ** 9 ** 9", "2 ** 1000 ** 1000", "9" * 499):
        with pytest.raises(ToolError):
            evaluate(expression)
    assert time.monotonic() - started < 0.5


def test_evaluate_returns_numbers() -> None:
    assert evaluate("6 * 7") == 42
    assert evaluate("1 / 4") == 0.25


def test_current_time_uses_the_context_clock() -> None:
    ctx = _ctx(datetime(2025, 1, 15, 9, 30, 5, 123456, tzinfo=UTC))
    assert current_time(ctx) == "2025-01-15T09:30:05+00:00"
    assert current_time(ctx, "Europe/Paris") == "2025-01-15T10:30:05+01:00"
    assert current_time(ctx, "America/New_York") == "2025-01-15T04:30:05-05:00"
    summer = _ctx(datetime(2025, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    assert current_time(summer, "Europe/Paris") == "2025-07-01T12:00:00+02:00"


def test_current_time_defaults_to_the_system_clock() -> None:
    ctx = ToolContext(tenant_id=uuid.uuid4(), agent_id=uuid.uuid4())
    before = datetime.now(UTC).replace(microsecond=0)
    reading = datetime.fromisoformat(current_time(ctx, "Asia/Tokyo"))
    assert reading.utcoffset() == timedelta(hours=9)
    assert before <= reading <= datetime.now(UTC)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "/etc/passwd", "Europe"])
def test_current_time_refuses_unknown_zones(zone: str) -> None:
    with pytest.raises(ToolError, match="unknown time zone"):
        current_time(_ctx(datetime(2025, 1, 1, tzinfo=UTC)), zone)


def test_fixed_clock_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2025, 1, 1))  # naive on purpose


def test_builtins_register_and_run_as_tools() -> None:
    registry = ToolRegistry(BUILTIN_TOOLS)
    assert registry.names() == ["calculator", "current_time", "ask_user"]
    calc = registry.get("calculator").schema()["function"]
    assert calc["description"] == (
        "Evaluate an arithmetic expression exactly as written and return the number."
    )
    assert calc["parameters"]["required"] == ["expression"]
    assert "sqrt(2) * pi" in calc["parameters"]["properties"]["expression"]["description"]
    clock = registry.get("current_time").schema()["function"]["parameters"]
    assert clock["properties"]["timezone"]["default"] == "UTC"
    assert "ctx" not in clock["properties"]
    ctx = _ctx(datetime(2025, 3, 1, tzinfo=UTC))
    assert asyncio.run(registry.get("calculator").call(ctx, '{"expression": "6*7"}')) == "42"
    assert asyncio.run(registry.get("current_time").call(ctx, "{}")) == "2025-03-01T00:00:00+00:00"
    with pytest.raises(ToolError, match="division by zero"):
        asyncio.run(registry.get("calculator").call(ctx, '{"expression": "1/0"}'))


def test_ask_user_has_a_question_schema_and_never_invents_an_answer() -> None:
    ask = ToolRegistry(BUILTIN_TOOLS).get("ask_user")
    assert ask.schema()["function"]["parameters"]["required"] == ["question"]
    with pytest.raises(ToolError, match="answered by a person"):
        asyncio.run(ask.call(_ctx(datetime(2025, 3, 1, tzinfo=UTC)), '{"question": "why?"}'))
