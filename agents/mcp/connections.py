"""A worker's open MCP sessions: one per server (and registration version), on the portal's
event loop, shared by the runs of the process and closed after AGENTMILL_MCP_IDLE_CLOSE_S
unused.

Each session belongs to a task of its own that enters the SDK's `Client` and leaves it (anyio
needs both in one task); callers only send requests through it. A session whose transport
failed (a stdio server that exited, an HTTP server that went away) is dropped, and the next
use opens a new one. Listing tools tries twice (it changes nothing); a tool call is never
resent by this layer: the runner's exactly-once rules decide what happens to a call cut short.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
import time
from contextlib import AsyncExitStack
from typing import Any, cast

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Implementation, RequestParamsMeta, Tool

from agents.mcp.records import McpEndpoint
from core.config import Settings
from core.egress import Allowed, DestinationRefused, GuardedTransport

log = logging.getLogger(__name__)

IDEMPOTENCY_META = "agentmill.dev/idempotency_key"
"""The `_meta` key of a tool call that carries its idempotency key (`{lineage}:{step}:{id}`):
a server that dedupes by it never runs one call twice."""
_MAX_PAGES = 50
_SSE_READ_TIMEOUT_S = 300.0


class McpFailure(Exception):
    """The server could not be reached, did not answer in time, or answered with a protocol
    error instead of a result; the message says which."""


def _version() -> str:
    try:
        return importlib.metadata.version("agentmill")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def describe(exc: BaseException) -> str:
    """A one-line reason for a failure, without tracebacks (an ExceptionGroup's first leaf)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, DestinationRefused | McpFailure):
        return str(exc)
    if isinstance(exc, httpx2.ConnectError | ConnectionError | OSError):
        return f"cannot connect ({type(exc).__name__}: {exc})"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"the server answered HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, MCPError):
        return f"MCP error {exc.code}: {exc}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Session:
    """One open session, owned by its task."""

    def __init__(self, endpoint: McpEndpoint, pool: McpConnections) -> None:
        self.endpoint = endpoint
        self.pool = pool
        self.client: Client | None = None
        self.error: BaseException | None = None
        self.closed = False
        self.busy = 0
        self.last_used = time.monotonic()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._own())

    async def opened(self) -> Client:
        """The connected client; McpFailure when connecting failed."""
        await self._ready.wait()
        if self.client is None or self.closed:
            raise McpFailure(describe(self.error) if self.error else "the session closed")
        return self.client

    def close(self) -> None:
        """Ask the owning task to leave the session."""
        self._stop.set()

    async def _own(self) -> None:
        settings = self.pool.settings
        try:
            async with AsyncExitStack() as stack:
                client = Client(
                    self._transport(stack),
                    read_timeout_seconds=settings.mcp_call_timeout_s,
                    client_info=Implementation(name="agentmill", version=_version()),
                    cache=None,
                )
                async with asyncio.timeout(settings.mcp_connect_timeout_s):
                    await stack.enter_async_context(client)
                self.client = client
                self._ready.set()
                await self._until_idle()
        except Exception as exc:
            self.error = exc
            if self.client is not None:
                log.info("MCP server %r: session ended: %s", self.endpoint.name, describe(exc))
        finally:
            self.closed = True
            self._ready.set()

    def _transport(self, stack: AsyncExitStack) -> Any:
        endpoint, settings = self.endpoint, self.pool.settings
        if endpoint.transport == "stdio":
            command = settings.mcp_stdio_servers.get(endpoint.command or "")
            if command is None:
                raise McpFailure(
                    f"the stdio server {endpoint.command!r} is not in this worker's "
                    "AGENTMILL_MCP_STDIO_SERVERS"
                )
            params = StdioServerParameters(
                command=command.command,
                args=list(command.args),
                env={**get_default_environment(), **command.env},
                cwd=command.cwd,
            )
            # The worker's sys.stderr may be a logging proxy with no file descriptor.
            return stdio_client(params, errlog=sys.__stderr__ or sys.stderr)
        http = httpx2.AsyncClient(
            transport=GuardedTransport(self.pool.allowed),
            headers=endpoint.headers,
            timeout=httpx2.Timeout(settings.mcp_connect_timeout_s, read=_SSE_READ_TIMEOUT_S),
        )
        stack.push_async_callback(http.aclose)
        return streamable_http_client(str(endpoint.url), http_client=http)

    async def _until_idle(self) -> None:
        idle_s = self.pool.settings.mcp_idle_close_s
        while True:
            try:
                async with asyncio.timeout(idle_s):
                    await self._stop.wait()
                return
            except TimeoutError:
                if self.busy == 0 and time.monotonic() - self.last_used >= idle_s:
                    log.info("MCP server %r: closing the idle session", self.endpoint.name)
                    return


class McpConnections:
    """The process's sessions; every method runs on the portal's event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.allowed = Allowed(settings.mcp_allowed_hosts)
        self._sessions: dict[tuple[str, str], _Session] = {}
        self._opening: dict[tuple[str, str], asyncio.Lock] = {}

    async def list_tools(self, endpoint: McpEndpoint) -> list[Tool]:
        """Every tool the server lists (all pages); McpFailure when it cannot."""
        for attempt in (1, 2):
            session = await self._session(endpoint)
            try:
                client = await session.opened()
                return await self._all_tools(session, client)
            except (McpFailure, MCPError, TimeoutError, OSError, httpx2.HTTPError) as exc:
                self._drop(session)
                if attempt == 2:
                    raise McpFailure(describe(exc)) from exc
        raise AssertionError("unreachable")

    async def call_tool(
        self,
        endpoint: McpEndpoint,
        name: str,
        arguments: dict[str, Any],
        *,
        idempotency_key: str | None,
        timeout_s: float,
    ) -> CallToolResult:
        """The result of one call (an error result when the tool failed); McpFailure when
        the server could not be asked or did not answer in time. Never resent."""
        session = await self._session(endpoint)
        client = await session.opened()
        session.busy += 1
        meta: RequestParamsMeta | None = None
        if idempotency_key:
            meta = cast(RequestParamsMeta, {IDEMPOTENCY_META: idempotency_key})
        try:
            return await client.call_tool(
                name, arguments, read_timeout_seconds=timeout_s, meta=meta
            )
        except MCPError as exc:
            if "timed out" in str(exc).lower():
                raise McpFailure(f"no answer within {timeout_s:g} s") from exc
            raise McpFailure(describe(exc)) from exc
        except Exception as exc:
            self._drop(session)
            raise McpFailure(describe(exc)) from exc
        finally:
            session.busy -= 1
            session.last_used = time.monotonic()

    async def close(self) -> None:
        """Close every session (a worker shutting down)."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            session.close()
        await asyncio.gather(*(s.task for s in sessions), return_exceptions=True)

    async def _all_tools(self, session: _Session, client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        session.busy += 1
        try:
            async with asyncio.timeout(self.settings.mcp_connect_timeout_s):
                for _ in range(_MAX_PAGES):
                    page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
        finally:
            session.busy -= 1
            session.last_used = time.monotonic()
        return tools

    async def _session(self, endpoint: McpEndpoint) -> _Session:
        key = (str(endpoint.server_id), endpoint.version)
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            current = self._sessions.get(key)
            if current is not None and not current.closed:
                current.last_used = time.monotonic()
                return current
            for old_key, old in list(self._sessions.items()):  # older versions, closed ones
                if old_key[0] == key[0] or old.closed:
                    self._drop(old)
            session = _Session(endpoint, self)
            self._sessions[key] = session
            return session

    def _drop(self, session: _Session) -> None:
        key = (str(session.endpoint.server_id), session.endpoint.version)
        if self._sessions.get(key) is session:
            del self._sessions[key]
        session.close()
