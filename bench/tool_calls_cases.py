"""The tool-call benchmark's cases (bench/tool_calls_cases.json, written for this benchmark).

249 functions with varied parameter schemas (nested objects, arrays of objects, enums, ranged
integers and numbers, booleans, optional fields, `format` and `pattern` strings, closed and
open objects), each with a request that gives every value the call needs and the arguments
expected; and 50 requests that need no tool, for `tool_choice: auto`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Case:
    """A function, a request that needs it, and the arguments that request asks for."""

    name: str
    description: str
    prompt: str
    parameters: dict[str, Any]
    expected: dict[str, Any]


_DATA = json.loads((Path(__file__).parent / "tool_calls_cases.json").read_text())
CASES: list[Case] = [Case(**case) for case in _DATA["cases"]]
NO_TOOL_PROMPTS: list[str] = list(_DATA["no_tool_prompts"])
