"""`McpServers`: what the REST layer does with a tenant's MCP servers, one transaction per
method (the SQL is in agents/mcp/store.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Engine

from agents.mcp import store
from agents.mcp.records import McpServer, NewMcpServer
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox


class McpServers:
    """The tenants' MCP servers, over one database engine."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def create(self, tenant_id: uuid.UUID, new: NewMcpServer) -> McpServer:
        """Register a server; Conflict when the tenant has one of that name."""
        box = SecretBox.from_settings(self.settings)
        with transaction(self.engine) as session:
            return store.create_server(session, box, tenant_id, new)

    def page(
        self, tenant_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[McpServer]:
        """Servers oldest first, `limit` after the (created_at, id) key `after`."""
        with transaction(self.engine) as session:
            return store.list_servers(session, tenant_id, limit=limit, after=after)

    def get(self, tenant_id: uuid.UUID, server_id: uuid.UUID) -> McpServer:
        """One server, or NotFound."""
        with transaction(self.engine) as session:
            return store.get_server(session, tenant_id, server_id)

    def update(
        self,
        tenant_id: uuid.UUID,
        server_id: uuid.UUID,
        *,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
        clear_timeout: bool = False,
    ) -> McpServer:
        """Change the address, the headers (replaced as a whole) or the timeout."""
        box = SecretBox.from_settings(self.settings)
        with transaction(self.engine) as session:
            return store.update_server(
                session,
                box,
                tenant_id,
                server_id,
                url=url,
                headers=headers,
                timeout_s=timeout_s,
                clear_timeout=clear_timeout,
            )

    def delete(self, tenant_id: uuid.UUID, server_id: uuid.UUID) -> None:
        """Delete a server; McpServerInUse while an agent names it."""
        with transaction(self.engine) as session:
            store.delete_server(session, tenant_id, server_id)
