"""A small MCP server for the tests, run as a real process over stdio or streamable HTTP:

    python -m tests.agents.mcp_test_server stdio
    python -m tests.agents.mcp_test_server http PORT

Tools: `get_forecast(city)` (read-only), `add(a, b)` (structured result), `fail(reason)` (a tool
error), `slow(seconds)` (for timeouts), `record(note)` (appends a line with the call's
idempotency key to the file named by MCP_TEST_LOG, so a test can count executions; it waits
for MCP_TEST_GATE, a file, to exist when that is set, so a test can kill a worker mid-call),
and `dotted.name` (a name our tool names cannot carry as is). A `secret_check` tool returns the
`x-api-key` header it was called with (HTTP only).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("agentmill-test", log_level="ERROR")

IDEMPOTENCY_META = "agentmill.dev/idempotency_key"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def get_forecast(city: str) -> str:
    """The weather forecast for a city.

    Args:
        city: The city's name.
    """
    return f"Sunny in {city}, 21 degrees"


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Add two integers."""
    return {"sum": a + b}


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the given reason."""
    raise ToolError(f"failed on purpose: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then answer."""
    await asyncio.sleep(seconds)
    return "done"


@server.tool()
async def record(note: str, ctx: Context) -> str:
    """Write a note down (the test counts the writes)."""
    meta: Any = ctx.request_context.meta
    key = None
    if meta is not None:
        extra = meta.model_dump() if hasattr(meta, "model_dump") else dict(meta)
        key = extra.get(IDEMPOTENCY_META)
    await asyncio.to_thread(_log, f"start {key} {note}")
    while not await asyncio.to_thread(_gate_open):  # noqa: ASYNC110 (a file, not an event)
        await asyncio.sleep(0.05)
    await asyncio.to_thread(_log, f"end {key} {note}")
    return f"noted: {note}"


def _log(line: str) -> None:
    log = os.environ.get("MCP_TEST_LOG")
    if log:
        with Path(log).open("a") as out:
            out.write(f"{line}\n")


def _gate_open() -> bool:
    gate = os.environ.get("MCP_TEST_GATE")
    return not gate or Path(gate).exists()


@server.tool(name="dotted.name")
def dotted() -> str:
    """A tool whose name holds a dot."""
    return "dotted"


@server.tool()
def secret_check(ctx: Context) -> str:
    """The x-api-key header of the call."""
    request: Any = ctx.request_context.request
    headers = getattr(request, "headers", {}) if request is not None else {}
    return str(headers.get("x-api-key", "none"))


def main() -> None:
    """Run over the transport named on the command line."""
    if sys.argv[1] == "stdio":
        server.run("stdio")
        return
    port = int(sys.argv[2])
    server.run("streamable-http", host="127.0.0.1", port=port, stateless_http=True)


if __name__ == "__main__":
    main()
