"""MCP servers: register, list, read, change, delete (tenant-scoped; another tenant's are 404).
Agents name them in `mcp_servers`; workers list and call their tools."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from api.deps import McpServerId, McpServersDep, PrincipalDep, SettingsDep
from api.idempotency import IdempotentDep
from api.schemas.common import (
    Cursor,
    Limit,
    Page,
    by_time,
    decode_cursor,
    invalid,
    keyset_page,
)
from api.schemas.mcp_servers import (
    McpServerCreate,
    McpServerPublic,
    McpServerUpdate,
    check_destination,
)
from core.web.errors import error_responses

router = APIRouter(
    prefix="/v1/mcp-servers", tags=["mcp servers"], responses=error_responses(401, 422, 429)
)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=McpServerPublic,
    responses=error_responses(400, 409, 413),
)  # fmt: skip
def create_mcp_server(
    principal: PrincipalDep,
    body: McpServerCreate,
    servers: McpServersDep,
    settings: SettingsDep,
    idem: IdempotentDep,
) -> Any:
    """Register a server; 409 when the tenant has one of that name, 422 for a URL workers
    may not reach or a stdio command the deployer does not allow."""
    check_destination(body.url, body.command, settings)
    new = body.new_server()
    return idem.run(201, lambda: McpServerPublic.of(servers.create(principal.tenant_id, new)))


@router.get("")
def list_mcp_servers(
    principal: PrincipalDep, servers: McpServersDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[McpServerPublic]:
    """The tenant's servers, oldest first, `limit` per page."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = servers.page(principal.tenant_id, limit=limit + 1, after=after)
    return keyset_page(found, limit, by_time, McpServerPublic.of)


@router.get("/{server_id}", responses=error_responses(404))
def get_mcp_server(
    principal: PrincipalDep, server_id: McpServerId, servers: McpServersDep
) -> McpServerPublic:
    """One server, with the last listing of its tools."""
    return McpServerPublic.of(servers.get(principal.tenant_id, server_id))


@router.patch("/{server_id}", responses=error_responses(400, 404, 413))
def update_mcp_server(
    principal: PrincipalDep,
    server_id: McpServerId,
    body: McpServerUpdate,
    servers: McpServersDep,
    settings: SettingsDep,
) -> McpServerPublic:
    """Change the URL, the headers (replaced as a whole) or the call timeout."""
    current = servers.get(principal.tenant_id, server_id)
    if body.url is not None and current.transport == "stdio":
        raise invalid("url", "a stdio server takes no url", value=body.url)
    check_destination(body.url, None, settings)
    updated = servers.update(
        principal.tenant_id,
        server_id,
        url=body.url,
        headers=body.headers,
        timeout_s=body.timeout_s,
        clear_timeout="timeout_s" in body.model_fields_set and body.timeout_s is None,
    )
    return McpServerPublic.of(updated)


@router.delete(
    "/{server_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409)
)
def delete_mcp_server(
    principal: PrincipalDep, server_id: McpServerId, servers: McpServersDep
) -> Response:
    """Delete a server; 409 while an agent names it."""
    servers.delete(principal.tenant_id, server_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
