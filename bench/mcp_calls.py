"""What an MCP tool call costs a run: the same tiny tool called as a local Python tool and as
an MCP tool over stdio and over streamable HTTP, through the worker's own path (McpSources:
argument check, the session shared by the process, the SDK's request, rendering), in the same
run. The server is tests/agents/mcp_test_server.py as a real process; sessions are warm after
the first call (which opens them, and is reported apart).

    .venv/bin/python -m bench.mcp_calls [--calls 200]

Needs no database: the endpoints are built directly, as a worker would have read them.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from agents.mcp.records import McpEndpoint
from agents.mcp.sources import McpSources
from agents.records import McpServerUse
from agents.runs.portal import Portal
from agents.tools.context import ToolContext
from agents.tools.registry import Tool, tool
from core.config import McpStdioCommand, Settings
from core.web.threaded import free_port
from tests.services import MCP_TEST_SERVER, ROOT


def get_forecast(city: str) -> str:
    """The weather forecast for a city (the local twin of the MCP server's tool).

    Args:
        city: The city's name.
    """
    return f"Sunny in {city}, 21 degrees"


def _timed(portal: Portal, target: Tool, calls: int) -> tuple[float, list[float]]:
    ctx = ToolContext(tenant_id=uuid.uuid4(), agent_id=uuid.uuid4(), idempotency_key="k:1:c")
    first = time.perf_counter()
    portal.call(target.call(ctx, {"city": "Oslo"}))
    opening = (time.perf_counter() - first) * 1000
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        result = portal.call(target.call(ctx, {"city": f"City{i}"}))
        samples.append((time.perf_counter() - started) * 1000)
        assert result.startswith("Sunny"), result
    return opening, samples


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the MCP test server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    http = subprocess.Popen(
        [sys.executable, *MCP_TEST_SERVER, "http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    portal = Portal()
    command = McpStdioCommand(
        command=sys.executable, args=(*MCP_TEST_SERVER, "stdio"), cwd=str(ROOT)
    )
    settings = Settings(mcp_stdio_servers={"weather": command}, mcp_allowed_hosts=("127.0.0.1",))
    # No database: storing the listing for the API fails, is logged, and changes nothing.
    logging.getLogger("agents.mcp.sources").setLevel(logging.ERROR)
    sources = McpSources(engine=None, settings=settings, portal=portal)  # type: ignore[arg-type]
    try:
        _wait_listening(port, http)
        endpoints = {
            "stdio": McpEndpoint(uuid.uuid4(), "weather", "1", "stdio", None, "weather", {}, None),
            "http": McpEndpoint(
                uuid.uuid4(), "remote", "1", "http", f"http://127.0.0.1:{port}/mcp", None, {}, None
            ),
        }
        targets: dict[str, Callable[[], Tool]] = {"local": lambda: tool(get_forecast)}
        for label, endpoint in endpoints.items():
            use = [McpServerUse(endpoint.name, ("get_forecast",))]

            def listed(e: McpEndpoint = endpoint, u: list[McpServerUse] = use) -> Tool:
                (found,) = sources.tools(u, {e.name: e}, portal.call).tools
                return found

            targets[label] = listed
        print(f"{args.calls} calls each, after one that opens the session; times in ms")
        print("| tool | first call | p50 | p99 | mean | p50 vs local |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        local_p50 = None
        for label, make in targets.items():
            opening, samples = _timed(portal, make(), args.calls)
            p50 = statistics.median(samples)
            p99 = statistics.quantiles(samples, n=100)[98]
            local_p50 = local_p50 or p50
            print(
                f"| {label} | {opening:.1f} | {p50:.2f} | {p99:.2f} | "
                f"{statistics.fmean(samples):.2f} | {p50 / local_p50:.0f}x |"
            )
    finally:
        sources.close()
        portal.close()
        http.terminate()
        http.wait(10)


if __name__ == "__main__":
    main()
