"""SQL for MCP servers. Every query is scoped to the caller's tenant: another tenant's server
is NotFound, like a missing one. Header values are sealed (core/secrets.py) before they are
written and opened only for a worker's endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents.errors import McpServerInUse, UnknownMcpServer
from agents.mcp.records import ListedTool, McpEndpoint, McpServer, NewMcpServer
from agents.tables import AgentRow, McpServerRow
from core.errors import Conflict, NotFound
from core.secrets import SecretBox


def _server(row: McpServerRow) -> McpServer:
    transport: Literal["http", "stdio"] = "stdio" if row.transport == "stdio" else "http"
    return McpServer(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        transport=transport,
        url=row.url,
        command=row.command,
        header_names=tuple(row.header_names),
        timeout_s=row.timeout_s,
        tools=None if row.tools is None else tuple(ListedTool.from_json(t) for t in row.tools),
        listed_at=row.listed_at,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _row(session: Session, tenant_id: uuid.UUID, server_id: uuid.UUID) -> McpServerRow:
    row = session.scalar(
        select(McpServerRow).where(
            McpServerRow.id == server_id, McpServerRow.tenant_id == tenant_id
        )
    )
    if row is None:
        raise NotFound("mcp server", str(server_id))
    return row


def create_server(
    session: Session, box: SecretBox, tenant_id: uuid.UUID, new: NewMcpServer
) -> McpServer:
    """Insert a server; Conflict when the tenant has one of that name."""
    row = McpServerRow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=new.name,
        transport=new.transport,
        url=new.url,
        command=new.command,
        headers=box.seal(new.headers) if new.headers else None,
        header_names=sorted(new.headers),
        timeout_s=new.timeout_s,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(f"an MCP server named {new.name!r} already exists", param="name") from None
    session.refresh(row)
    return _server(row)


def list_servers(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[McpServer]:
    """The tenant's servers oldest first, `limit` after the (created_at, id) key `after`."""
    query = select(McpServerRow).where(McpServerRow.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tuple_(McpServerRow.created_at, McpServerRow.id) > after)
    query = query.order_by(McpServerRow.created_at, McpServerRow.id).limit(limit)
    return [_server(row) for row in session.scalars(query)]


def get_server(session: Session, tenant_id: uuid.UUID, server_id: uuid.UUID) -> McpServer:
    """One server, or NotFound."""
    return _server(_row(session, tenant_id, server_id))


def update_server(
    session: Session,
    box: SecretBox,
    tenant_id: uuid.UUID,
    server_id: uuid.UUID,
    *,
    url: str | None,
    headers: dict[str, str] | None,
    timeout_s: float | None,
    clear_timeout: bool,
) -> McpServer:
    """Change a server's address, headers (replaced as a whole) or timeout; its listing is
    forgotten, so workers list it again."""
    row = _row(session, tenant_id, server_id)
    if url is not None:
        row.url = url
    if headers is not None:
        row.headers = box.seal(headers) if headers else None
        row.header_names = sorted(headers)
    if timeout_s is not None or clear_timeout:
        row.timeout_s = timeout_s
    row.tools, row.listed_at, row.last_error = None, None, None
    row.updated_at = func.now()
    session.flush()
    session.refresh(row)
    return _server(row)


def delete_server(session: Session, tenant_id: uuid.UUID, server_id: uuid.UUID) -> None:
    """Delete a server; McpServerInUse while an agent names it."""
    row = _row(session, tenant_id, server_id)
    users = session.scalars(
        select(AgentRow.name)
        .where(
            AgentRow.tenant_id == tenant_id,
            AgentRow.mcp_servers.contains([{"server": row.name}]),
        )
        .order_by(AgentRow.name)
        .limit(6)
    ).all()
    if users:
        raise McpServerInUse(row.name, list(users))
    session.delete(row)


def check_names(session: Session, tenant_id: uuid.UUID, names: Iterable[str]) -> None:
    """UnknownMcpServer unless the tenant has a server of each name; the rows are key-share
    locked, so a concurrent delete waits for the agent's commit (and then sees it)."""
    wanted = sorted(set(names))
    if not wanted:
        return
    found = set(
        session.scalars(
            select(McpServerRow.name)
            .where(McpServerRow.tenant_id == tenant_id, McpServerRow.name.in_(wanted))
            .with_for_update(key_share=True)
        )
    )
    if missing := [name for name in wanted if name not in found]:
        raise UnknownMcpServer(missing)


def endpoints(
    session: Session, box: SecretBox, tenant_id: uuid.UUID, names: Sequence[str]
) -> dict[str, McpEndpoint]:
    """How to reach the tenant's servers of these names (missing ones are left out)."""
    rows = session.scalars(
        select(McpServerRow).where(
            McpServerRow.tenant_id == tenant_id, McpServerRow.name.in_(list(names))
        )
    )
    return {
        row.name: McpEndpoint(
            server_id=row.id,
            name=row.name,
            version=row.updated_at.isoformat(),
            transport="stdio" if row.transport == "stdio" else "http",
            url=row.url,
            command=row.command,
            headers=dict(box.open(row.headers)) if row.headers else {},
            timeout_s=row.timeout_s,
        )
        for row in rows
    }


def record_listing(
    session: Session,
    endpoint: McpEndpoint,
    tools: Sequence[ListedTool] | None,
    error: str | None,
) -> None:
    """Store a worker's listing (or why it failed) on the server, unless the registration
    changed since the endpoint was read."""
    row = session.get(McpServerRow, endpoint.server_id, with_for_update=True)
    if row is None or row.updated_at.isoformat() != endpoint.version:
        return
    if tools is not None:
        row.tools = [tool.as_json() for tool in tools]
    row.listed_at = func.now()
    row.last_error = error
