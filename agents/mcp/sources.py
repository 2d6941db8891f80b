"""`McpSources`: the MCP tools of an agent's run, for a worker.

When an attempt of a run starts, for each server the agent names, the worker reads how to
reach it (the tenant's row, headers opened), lists its tools (reused for
AGENTMILL_MCP_TOOLS_TTL_S, listed again after a failed call) and stores the listing on the row
for the API to show. A server that cannot be listed leaves its tools out of this attempt and
is reported (the executor emits `tool.source_error`); its last good listing is used meanwhile
when this process has one. A call that fails for any reason, an unreachable server, a
timeout, an error result, becomes a tool error the model reads; none ends the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agents.errors import ToolError
from agents.mcp import store
from agents.mcp.connections import McpConnections, McpFailure
from agents.mcp.records import ListedTool, McpEndpoint
from agents.mcp.toolset import listing, offered, render
from agents.records import McpServerUse
from agents.runs.portal import Portal
from agents.tools.registry import Tool
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox, SecretsUnreadable

log = logging.getLogger(__name__)

Listings = list[tuple[list[ListedTool], str | None]]
"""Per server: its tools (the last good listing when listing failed), and why it failed."""


@dataclass(frozen=True)
class SourceProblem:
    """A server whose tools a run could not be offered, and why."""

    server: str
    message: str


@dataclass(frozen=True)
class McpToolset:
    """What a run's MCP servers offer it now."""

    tools: list[Tool]
    problems: list[SourceProblem]


class McpSources:
    """The MCP side of a worker process: its sessions and listings."""

    def __init__(self, engine: Engine, settings: Settings, portal: Portal) -> None:
        self.engine = engine
        self.settings = settings
        self.portal = portal
        self.connections = McpConnections(settings)
        self._box: SecretBox | None = None
        self._listings: dict[tuple[uuid.UUID, str], tuple[float, list[ListedTool]]] = {}

    def endpoints(
        self, session: Session, tenant_id: uuid.UUID, uses: Sequence[McpServerUse]
    ) -> dict[str, McpEndpoint] | SourceProblem:
        """How to reach these servers of the tenant (read in the caller's transaction), or
        the problem that stops every one of them (the secret key changed)."""
        try:
            return store.endpoints(session, self.box, tenant_id, [u.server for u in uses])
        except SecretsUnreadable as exc:
            return SourceProblem(", ".join(u.server for u in uses), str(exc))

    def tools(
        self,
        uses: Sequence[McpServerUse],
        found: dict[str, McpEndpoint],
        wait: Callable[[Coroutine[Any, Any, Listings]], Listings],
    ) -> McpToolset:
        """The tools these servers offer, with the servers that failed; `wait` runs the
        listing on the portal (the run's lease renewed meanwhile)."""
        problems = [
            SourceProblem(u.server, "no MCP server of this name (deleted?)")
            for u in uses
            if u.server not in found
        ]
        reachable = [(u, found[u.server]) for u in uses if u.server in found]
        listed = wait(self._list_all([endpoint for _, endpoint in reachable]))
        tools: list[Tool] = []
        for (use, endpoint), (items, problem) in zip(reachable, listed, strict=True):
            if problem is not None:
                problems.append(SourceProblem(endpoint.name, problem))
            timeout = endpoint.timeout_s or self.settings.mcp_call_timeout_s
            tools.extend(offered(endpoint, items, use, self._call, timeout))
        return McpToolset(tools, problems)

    @property
    def box(self) -> SecretBox:
        """The deployment's secret box, made on first use."""
        if self._box is None:
            self._box = SecretBox.from_settings(self.settings)
        return self._box

    def close(self) -> None:
        """Close every session (the worker is stopping)."""
        self.portal.call(self.connections.close())

    # -- on the portal's loop --------------------------------------------------------------

    async def _list_all(self, endpoints: list[McpEndpoint]) -> Listings:
        return list(await asyncio.gather(*(self._listing(e) for e in endpoints)))

    async def _listing(self, endpoint: McpEndpoint) -> tuple[list[ListedTool], str | None]:
        """The server's listing (cached within the TTL), and why listing failed if it did."""
        key = (endpoint.server_id, endpoint.version)
        cached = self._listings.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.settings.mcp_tools_ttl_s:
            return cached[1], None
        try:
            items = listing(endpoint.name, await self.connections.list_tools(endpoint))
        except McpFailure as exc:
            message = f"cannot list the tools of MCP server {endpoint.name!r}: {exc}"
            log.warning("%s", message)
            await asyncio.to_thread(self._record, endpoint, None, str(exc))
            return (cached[1] if cached else []), message
        self._listings = {k: v for k, v in self._listings.items() if k[0] != key[0]}
        self._listings[key] = (time.monotonic(), items)
        await asyncio.to_thread(self._record, endpoint, items, None)
        return items, None

    async def _call(
        self,
        endpoint: McpEndpoint,
        name: str,
        arguments: dict[str, Any],
        idempotency_key: str | None,
        timeout_s: float,
    ) -> str:
        try:
            result = await self.connections.call_tool(
                endpoint, name, arguments, idempotency_key=idempotency_key, timeout_s=timeout_s
            )
        except McpFailure as exc:
            self._listings.pop((endpoint.server_id, endpoint.version), None)
            raise ToolError(f"MCP server {endpoint.name!r}: {exc}") from exc
        return render(result)

    def _record(
        self, endpoint: McpEndpoint, items: list[ListedTool] | None, error: str | None
    ) -> None:
        try:
            with transaction(self.engine) as session:
                store.record_listing(session, endpoint, items, error)
        except Exception:  # the listing is for show; a run never fails for it
            log.warning("MCP server %r: the listing was not stored", endpoint.name, exc_info=True)
