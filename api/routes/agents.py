"""Agents: create, list, read, change, delete (tenant-scoped; another tenant's are 404)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from agents import agent_store
from api.deps import AgentId, EngineDep, PrincipalDep, SettingsDep
from api.schemas.agents import AgentCreate, AgentPublic, AgentUpdate, check_model
from api.schemas.common import Limit, Page, decode_cursor, encode_cursor
from core.db import transaction
from core.web.errors import error_responses

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=error_responses(401, 422, 429))


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 409, 413))
def create_agent(
    principal: PrincipalDep, body: AgentCreate, engine: EngineDep, settings: SettingsDep
) -> AgentPublic:
    """Create an agent; 409 when the tenant already has one of that name."""
    check_model(body.model, settings)
    with transaction(engine) as session:
        agent = agent_store.create_agent(session, principal.tenant_id, body.values())
    return AgentPublic.of(agent)


@router.get("")
def list_agents(
    principal: PrincipalDep, engine: EngineDep, limit: Limit = 50, cursor: str | None = None
) -> Page[AgentPublic]:
    """The tenant's agents, oldest first, `limit` per page."""
    after = decode_cursor(cursor) if cursor is not None else None
    with transaction(engine) as session:
        agents = agent_store.list_agents(session, principal.tenant_id, limit=limit + 1, after=after)
    page = agents[:limit]
    more = len(agents) > limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return Page(data=[AgentPublic.of(a) for a in page], next_cursor=next_cursor)


@router.get("/{agent_id}", responses=error_responses(404))
def get_agent(principal: PrincipalDep, agent_id: AgentId, engine: EngineDep) -> AgentPublic:
    """One agent."""
    with transaction(engine) as session:
        return AgentPublic.of(agent_store.get_agent(session, principal.tenant_id, agent_id))


@router.patch("/{agent_id}", responses=error_responses(400, 404, 409, 413))
def update_agent(
    principal: PrincipalDep,
    agent_id: AgentId,
    body: AgentUpdate,
    engine: EngineDep,
    settings: SettingsDep,
) -> AgentPublic:
    """Change the fields sent; a run reads the agent when a worker starts it."""
    check_model(body.model, settings)
    with transaction(engine) as session:
        current = agent_store.get_agent(session, principal.tenant_id, agent_id)
        agent = agent_store.update_agent(
            session, principal.tenant_id, agent_id, body.changes(current)
        )
    return AgentPublic.of(agent)


@router.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
def delete_agent(principal: PrincipalDep, agent_id: AgentId, engine: EngineDep) -> Response:
    """Delete an agent with its sessions and runs; 409 while one of its runs is active."""
    with transaction(engine) as session:
        agent_store.delete_agent(session, principal.tenant_id, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
