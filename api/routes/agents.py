"""Agents: create, list, read, change, delete (tenant-scoped; another tenant's are 404)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from api.deps import AgentId, AgentsDep, PrincipalDep, SettingsDep
from api.idempotency import IdempotentDep
from api.schemas.agents import AgentCreate, AgentPublic, AgentUpdate, check_model
from api.schemas.common import Cursor, Limit, Page, by_time, decode_cursor, keyset_page
from core.web.errors import error_responses

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=error_responses(401, 422, 429))


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=AgentPublic,
    responses=error_responses(400, 409, 413),
)  # fmt: skip
def create_agent(
    principal: PrincipalDep,
    body: AgentCreate,
    agents: AgentsDep,
    settings: SettingsDep,
    idem: IdempotentDep,
) -> Any:
    """Create an agent; 409 when the tenant already has one of that name (or the
    Idempotency-Key came with another request)."""
    check_model(body.model, settings)
    return idem.run(
        201, lambda: AgentPublic.of(agents.create(principal.tenant_id, body.new_agent()))
    )


@router.get("")
def list_agents(
    principal: PrincipalDep, agents: AgentsDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[AgentPublic]:
    """The tenant's agents, oldest first, `limit` per page."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = agents.page(principal.tenant_id, limit=limit + 1, after=after)
    return keyset_page(found, limit, by_time, AgentPublic.of)


@router.get("/{agent_id}", responses=error_responses(404))
def get_agent(principal: PrincipalDep, agent_id: AgentId, agents: AgentsDep) -> AgentPublic:
    """One agent."""
    return AgentPublic.of(agents.get(principal.tenant_id, agent_id))


@router.patch("/{agent_id}", responses=error_responses(400, 404, 409, 413))
def update_agent(
    principal: PrincipalDep,
    agent_id: AgentId,
    body: AgentUpdate,
    agents: AgentsDep,
    settings: SettingsDep,
) -> AgentPublic:
    """Change the fields sent; a run reads the agent when a worker starts it."""
    check_model(body.model, settings)
    return AgentPublic.of(agents.update(principal.tenant_id, agent_id, body.changes))


@router.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
def delete_agent(principal: PrincipalDep, agent_id: AgentId, agents: AgentsDep) -> Response:
    """Delete an agent with its sessions and runs; 409 while one of its runs is active."""
    agents.delete(principal.tenant_id, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
