"""`client.mcp_servers`: register MCP servers as tool sources, list, get, update, delete.

An agent uses a registered server by naming it: `client.agents.create(...,
mcp_servers=[{"server": "weather"}])`; its tools are then called `weather__<tool>`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.models import McpServer, Page


def create_call(
    name: str,
    *,
    url: str | None,
    command: str | None,
    headers: dict[str, str] | None,
    timeout_s: float | None,
) -> Call:
    """POST /v1/mcp-servers: an HTTP server by `url`, or a deployer-allowed stdio `command`."""
    transport: Literal["http", "stdio"] = "stdio" if command is not None else "http"
    body: dict[str, Any] = {"name": name, "transport": transport}
    for key, value in (("url", url), ("command", command), ("headers", headers)):
        if value is not None:
            body[key] = value
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    return Call("POST", "/v1/mcp-servers", json=body, headers=new_key())


def update_call(
    server_id: uuid.UUID | str,
    *,
    url: str | None,
    headers: dict[str, str] | None,
    timeout_s: float | None,
) -> Call:
    """PATCH /v1/mcp-servers/{id} with the fields given."""
    body: dict[str, Any] = {}
    for key, value in (("url", url), ("headers", headers), ("timeout_s", timeout_s)):
        if value is not None:
            body[key] = value
    return Call("PATCH", f"/v1/mcp-servers/{server_id}", json=body)


def page_call(limit: int, cursor: str | None) -> Call:
    """GET /v1/mcp-servers, one page."""
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", "/v1/mcp-servers", params=params)


class McpServers:
    """The tenant's MCP servers."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self,
        name: str,
        *,
        url: str | None = None,
        command: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> McpServer:
        """Register a server: `url` (streamable HTTP, with `headers` stored encrypted) or
        `command` (a stdio server the deployer allows, by name); `ConflictError` if the name
        is taken, `ValidationError` for a URL workers may not reach."""
        call = create_call(name, url=url, command=command, headers=headers, timeout_s=timeout_s)
        return McpServer.model_validate(self._http.send(call).json())

    def get(self, server_id: uuid.UUID | str) -> McpServer:
        """One server with its last tool listing; `NotFoundError` if the tenant has none."""
        call = Call("GET", f"/v1/mcp-servers/{server_id}")
        return McpServer.model_validate(self._http.send(call).json())

    def update(
        self,
        server_id: uuid.UUID | str,
        *,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> McpServer:
        """Change the URL, the headers (replaced as a whole) or the call timeout."""
        call = update_call(server_id, url=url, headers=headers, timeout_s=timeout_s)
        return McpServer.model_validate(self._http.send(call).json())

    def delete(self, server_id: uuid.UUID | str) -> None:
        """Delete a server; `ConflictError` while an agent uses it."""
        self._http.send(Call("DELETE", f"/v1/mcp-servers/{server_id}"))

    def page(self, *, limit: int = 50, cursor: str | None = None) -> Page[McpServer]:
        """One page of servers, oldest first."""
        return Page[McpServer].model_validate(self._http.send(page_call(limit, cursor)).json())

    def list(self, *, limit: int = 50) -> Iterator[McpServer]:
        """Every server, oldest first, fetched `limit` per request as iteration goes."""
        cursor: str | None = None
        while True:
            page = self.page(limit=limit, cursor=cursor)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncMcpServers:
    """The tenant's MCP servers (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        name: str,
        *,
        url: str | None = None,
        command: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> McpServer:
        """Register a server (see `McpServers.create`)."""
        call = create_call(name, url=url, command=command, headers=headers, timeout_s=timeout_s)
        return McpServer.model_validate((await self._http.send(call)).json())

    async def get(self, server_id: uuid.UUID | str) -> McpServer:
        """One server with its last tool listing."""
        call = Call("GET", f"/v1/mcp-servers/{server_id}")
        return McpServer.model_validate((await self._http.send(call)).json())

    async def update(
        self,
        server_id: uuid.UUID | str,
        *,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> McpServer:
        """Change the URL, the headers or the call timeout."""
        call = update_call(server_id, url=url, headers=headers, timeout_s=timeout_s)
        return McpServer.model_validate((await self._http.send(call)).json())

    async def delete(self, server_id: uuid.UUID | str) -> None:
        """Delete a server; `ConflictError` while an agent uses it."""
        await self._http.send(Call("DELETE", f"/v1/mcp-servers/{server_id}"))

    async def page(self, *, limit: int = 50, cursor: str | None = None) -> Page[McpServer]:
        """One page of servers, oldest first."""
        response = await self._http.send(page_call(limit, cursor))
        return Page[McpServer].model_validate(response.json())

    async def list(self, *, limit: int = 50) -> AsyncIterator[McpServer]:
        """Every server, oldest first."""
        cursor: str | None = None
        while True:
            page = await self.page(limit=limit, cursor=cursor)
            for server in page.data:
                yield server
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
