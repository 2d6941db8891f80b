"""Long-term memories: write, search or list, read, delete, and erase an end user's
(tenant-scoped; another tenant's agents and memories are 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from agents import agent_store
from api.deps import EngineDep, MemoryDep, MemoryId, OwnedAgentId, PrincipalDep
from api.schemas.common import Page, Storable, invalid
from api.schemas.memories import (
    Erased,
    MemoryCreate,
    MemoryHit,
    MemoryPublic,
    MemoryQuery,
    MemoryWritten,
    decode_list_cursor,
    encode_list_cursor,
    next_position,
    page_window,
)
from core.db import transaction
from core.errors import NotFound
from core.web.errors import error_responses

router = APIRouter(prefix="/v1", tags=["memories"], responses=error_responses(401, 422, 429))

DEFAULT_K = 10
DEFAULT_LIMIT = 50

# `{user_id:path}` in the routes: a user id may hold "/" (percent-encoded, %2F).
UserIdPath = Annotated[
    str, Path(min_length=1, max_length=256, description="An end user id."), Storable
]


@router.post(
    "/agents/{agent_id}/memories",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": MemoryWritten, "description": "Merged into a near-duplicate."},
        **error_responses(400, 404, 413),
    },
)
def create_memory(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    body: MemoryCreate,
    response: Response,
    engine: EngineDep,
    memory: MemoryDep,
) -> MemoryWritten:
    """Store a memory of the agent (201), or update its near-duplicate (200, `deduplicated`).
    With a `session_id`, the session must be the agent's; its end user is the default."""
    user_id = body.user_id
    if body.session_id is not None:
        with transaction(engine) as session:
            chat = agent_store.get_session(session, principal.tenant_id, body.session_id)
        if chat.agent_id != agent_id:
            raise invalid("session_id", "the session belongs to another agent")
        if user_id is None:
            user_id = chat.user_id
        elif chat.user_id is not None and chat.user_id != user_id:
            raise invalid("user_id", "differs from the session's end user")
    result = memory.add(principal.tenant_id, body.new_memory(agent_id, user_id))
    if result.deduplicated:
        response.status_code = status.HTTP_200_OK
    record = memory.get(principal.tenant_id, result.id)
    return MemoryWritten.written(record, result.deduplicated)


@router.get("/agents/{agent_id}/memories", responses=error_responses(404, 413))
def find_memories(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    params: Annotated[MemoryQuery, Query()],
    memory: MemoryDep,
) -> Page[MemoryHit] | Page[MemoryPublic]:
    """With `query`: the `k` memories that best answer it, best first (one page). Without:
    the memories newest first, `limit` per page. The filters apply to both."""
    params.check_mode()
    flt = params.memory_filter(agent_id)
    if params.query is not None:
        hits = memory.search(principal.tenant_id, params.query, k=params.k or DEFAULT_K, where=flt)
        return Page[MemoryHit](data=[MemoryHit.of(hit) for hit in hits])
    limit = params.limit or DEFAULT_LIMIT
    position = decode_list_cursor(params.cursor) if params.cursor is not None else None
    window, offset = page_window(flt, position)
    records = memory.list_memories(principal.tenant_id, window, limit=limit + 1, offset=offset)
    page = records[:limit]
    after = next_position(page, position) if len(records) > limit else None
    next_cursor = encode_list_cursor(*after) if after is not None else None
    return Page[MemoryPublic](data=[MemoryPublic.of(r) for r in page], next_cursor=next_cursor)


@router.get("/memories/{memory_id}", responses=error_responses(404))
def get_memory(principal: PrincipalDep, memory_id: MemoryId, memory: MemoryDep) -> MemoryPublic:
    """One memory."""
    return MemoryPublic.of(memory.get(principal.tenant_id, memory_id))


@router.delete(
    "/memories/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404),
)
def delete_memory(principal: PrincipalDep, memory_id: MemoryId, memory: MemoryDep) -> Response:
    """Delete one memory."""
    memory.delete(principal.tenant_id, memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/agents/{agent_id}/users/{user_id:path}/memories", responses=error_responses(404))
def erase_agent_user(
    principal: PrincipalDep, agent_id: OwnedAgentId, user_id: UserIdPath, memory: MemoryDep
) -> Erased:
    """Erase everything the agent stores about one end user: memories and the user's blocks."""
    tenant_id = principal.tenant_id
    deleted = memory.erase_user(tenant_id, user_id, agent_id=agent_id)
    # MemoryStore.erase_user limited to one agent leaves blocks alone; these deletes are
    # separate transactions, so a failed erase is finished by repeating the request.
    for block in memory.list_blocks(tenant_id, agent_id, user_id=user_id):
        if block.user_id != user_id:
            continue
        try:
            memory.delete_block(tenant_id, agent_id, block.label, user_id=user_id)
        except NotFound:  # a concurrent delete got there first
            continue
        deleted += 1
    return Erased(deleted=deleted)


@router.delete("/users/{user_id:path}/memories")
def erase_user(principal: PrincipalDep, user_id: UserIdPath, memory: MemoryDep) -> Erased:
    """Erase everything stored about one end user across the tenant's agents: memories and
    core blocks with their history, in one transaction (GDPR-style erase)."""
    return Erased(deleted=memory.erase_user(principal.tenant_id, user_id))
