"""Built-in tools that need no service beyond a clock: `calculator` and `current_time` (and
`ask_user`, answered by a person: agents/tools/ask_user.py).

The calculator walks the `ast` of the expression and evaluates only numbers, arithmetic
operators and a short list of math functions; it never calls eval or exec. Every input and
intermediate result is bounded, so no expression can exhaust memory or CPU. The memory tools
live with the memory layer.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents.errors import ToolError, short_repr
from agents.tools.ask_user import ASK_USER_TOOL
from agents.tools.context import ToolContext
from agents.tools.registry import Tool, tool

MAX_EXPRESSION_CHARS = 500
MAX_PARENTHESES = 50
# Bounds the evaluator's recursion; 250 lets any 500-character chain like 1+1+...+1 through.
MAX_DEPTH = 250
# Integers past ~300 digits are no use to a model and their arithmetic grows without bound
# (10**10**10 alone would take gigabytes); floats are bounded by being finite.
MAX_INT_BITS = 1024
MAX_ROUND_DIGITS = 100

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _round(x: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
        raise ToolError(
            f"round(): digits must be an integer between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}"
        )
    return round(x, digits)


def _log(x: Number, base: Number = math.e) -> float:
    return math.log(x, base)


# name -> (fewest arguments, most arguments or None for any, function)
_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Number]]] = {
    "abs": (1, 1, abs),
    "round": (1, 2, _round),
    "min": (1, None, lambda *xs: min(xs)),
    "max": (1, None, lambda *xs: max(xs)),
    "sqrt": (1, 1, math.sqrt),
    "log": (1, 2, _log),
    "log10": (1, 1, math.log10),
    "exp": (1, 1, math.exp),
    "sin": (1, 1, math.sin),
    "cos": (1, 1, math.cos),
    "tan": (1, 1, math.tan),
    "floor": (1, 1, math.floor),
    "ceil": (1, 1, math.ceil),
}


def _checked(value: Number) -> Number:
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise ToolError(f"a number exceeds {MAX_INT_BITS} bits (about 308 digits)")
    elif not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    return value


def _power(base: Number, exponent: Number) -> Number:
    # Estimate before computing: the result has at least (bits(base) - 1) * exponent bits.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise ToolError(f"{base} ** {exponent} is too large")
    return base**exponent


def _apply(node: ast.AST, depth: int) -> Number:
    """Evaluate one node; everything not listed here is refused."""
    if depth > MAX_DEPTH:
        raise ToolError(f"the expression nests operations more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        if type(node.value) is int or type(node.value) is float:  # not bool, complex or str
            return _checked(node.value)
        raise ToolError(f"only numbers are allowed, not {repr(node.value)[:40]}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _apply(node.left, depth + 1), _apply(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_apply(node.operand, depth + 1))
    if isinstance(node, ast.BinOp | ast.UnaryOp):  # an operator outside the tables above
        hint = "; write powers as **" if isinstance(node.op, ast.BitXor) else ""
        raise ToolError(f"the operator {type(node.op).__name__} is not allowed{hint}")
    if isinstance(node, ast.Name):
        if node.id not in _CONSTANTS:
            raise ToolError(f"unknown name {short_repr(node.id)}; constants: pi, e")
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call):
        return _call(node, depth)
    raise ToolError(
        f"{_describe(node)} is not allowed; use numbers, + - * / // % ** and "
        f"the functions {', '.join(_FUNCTIONS)}"
    )


def _call(node: ast.Call, depth: int) -> Number:
    if not isinstance(node.func, ast.Name):
        raise ToolError(f"{_describe(node.func)} is not allowed; call functions by name")
    if node.func.id not in _FUNCTIONS:
        raise ToolError(
            f"unknown function {short_repr(node.func.id)}; available: {', '.join(_FUNCTIONS)}"
        )
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ToolError(f"{node.func.id}() takes plain positional arguments only")
    fewest, most, function = _FUNCTIONS[node.func.id]
    if len(node.args) < fewest or (most is not None and len(node.args) > most):
        expected = f"{fewest} to {most}" if most and most != fewest else str(fewest)
        more = " or more" if most is None else ""
        raise ToolError(
            f"{node.func.id}() takes {expected}{more} argument(s), got {len(node.args)}"
        )
    args = [_apply(arg, depth + 1) for arg in node.args]
    return _checked(function(*args))


def _describe(node: ast.AST) -> str:
    kinds = {ast.Attribute: "attribute access", ast.Lambda: "lambda", ast.Compare: "comparison",
             ast.BoolOp: "and/or", ast.Subscript: "indexing",
             ast.IfExp: "if/else"}  # fmt: skip
    return kinds.get(type(node), type(node).__name__)


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; raises ToolError with a reason when refused."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(
            f"the expression is {len(expression)} characters long; at most {MAX_EXPRESSION_CHARS}"
        )
    depth = deepest = 0
    for char in expression:  # the parser's own limit is an implementation detail; ours is not
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    if deepest > MAX_PARENTHESES:
        raise ToolError(f"parentheses are nested more than {MAX_PARENTHESES} deep")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise ToolError(f"not an arithmetic expression ({reason})") from None
    try:
        return _apply(tree.body, 0)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except ValueError as exc:  # math domain errors: sqrt(-1), log(0)
        raise ToolError(f"math error: {exc}") from None


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly as written and return the number.

    Supports + - * / // % ** and parentheses, the constants pi and e, and the functions
    abs, round, min, max, sqrt, log (natural, or log(x, base)), log10, exp, sin, cos, tan
    (radians), floor and ceil.

    Args:
        expression: The expression, for example "(3 + 4) * 2 ** 0.5" or "sqrt(2) * pi".
    """
    value = evaluate(expression)
    # 15 significant digits hide binary noise (0.1 + 0.2 reads 0.3) and round-trip any
    # decimal a person would type.
    return str(value) if isinstance(value, int) else format(value, ".15g")


def current_time(ctx: ToolContext, timezone: str = "UTC") -> str:
    """The current date and time as ISO 8601, in the given time zone.

    Args:
        timezone: An IANA time zone name, for example "Europe/Paris" or "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # bad keys, odd paths
        raise ToolError(
            f"unknown time zone {short_repr(timezone)}; use an IANA name such as "
            "'Europe/Paris' or 'UTC'"
        ) from None
    return ctx.services.clock.now().astimezone(zone).isoformat(timespec="seconds")


BUILTIN_TOOLS: tuple[Tool, ...] = (
    tool(calculator, timeout_s=5.0, idempotent=True),  # pure
    tool(current_time, idempotent=True),  # reads the clock
    ASK_USER_TOOL,  # answered by a person through the run's approvals
)
"""The built-in tools that need no memory layer, ready to register."""
