"""Tools: specs from typed functions, the built-in and memory tools, and running a step's calls
exactly once.

What a deployer writing tools needs is importable from here: `from agents.tools import tool,
ToolContext` (and `Tool`, `ToolServices`, `FixedClock` for tests of a tool)."""

from agents.tools.context import FixedClock, ToolContext, ToolServices
from agents.tools.registry import Tool, tool

__all__ = ["FixedClock", "Tool", "ToolContext", "ToolServices", "tool"]
