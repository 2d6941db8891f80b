"""Long-term memories: write, search or list, read, change, delete, and erase an end user's
data (tenant-scoped; another tenant's agents and memories are 404)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Path, Query, Request, Response, status

from api.deps import AgentsDep, MemoryDep, MemoryId, OwnedAgentId, PrincipalDep
from api.idempotency import IdempotentDep
from api.schemas.common import Page, Storable, by_time, decode_cursor, invalid, keyset_page
from api.schemas.erasure import Erased
from api.schemas.memories import (
    MemoryCreate,
    MemoryHit,
    MemoryPublic,
    MemoryQuery,
    MemoryUpdate,
    MemoryWritten,
)
from core.web.errors import error_responses

router = APIRouter(prefix="/v1", tags=["memories"], responses=error_responses(401, 422, 429))

DEFAULT_K = 10
DEFAULT_LIMIT = 50

# `{user_id:path}` in the routes: a user id may hold "/" (percent-encoded, %2F).
MAX_USER_ID = 256
UserIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_USER_ID, description="An end user id."), Storable
]


@router.post(
    "/agents/{agent_id}/memories",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": MemoryWritten, "description": "Merged into a near-duplicate."},
        **error_responses(400, 404, 409, 413),
    },
    response_model=MemoryWritten,
)
def create_memory(
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    body: MemoryCreate,
    response: Response,
    agents: AgentsDep,
    memory: MemoryDep,
    idem: IdempotentDep,
) -> Any:
    """Store a memory of the agent (201), or update its near-duplicate (200, `deduplicated`).
    With a `session_id`, the session must be the agent's; its end user is the default."""
    user_id = body.user_id
    if body.session_id is not None:
        chat = agents.session(principal.tenant_id, body.session_id)
        if chat.agent_id != agent_id:
            raise invalid("session_id", "the session belongs to another agent")
        if user_id is None:
            user_id = chat.user_id
        elif chat.user_id is not None and chat.user_id != user_id:
            raise invalid("user_id", "differs from the session's end user")
    new = body.new_memory(agent_id, user_id)

    def make() -> MemoryWritten:
        result = memory.add(principal.tenant_id, new)
        if result.deduplicated:
            response.status_code = status.HTTP_200_OK
        record = memory.get(principal.tenant_id, result.id)
        return MemoryWritten.written(record, result.deduplicated)

    return idem.run(lambda made: 200 if made.deduplicated else 201, make)


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
    before = decode_cursor(params.cursor) if params.cursor is not None else None
    records = memory.list_memories(principal.tenant_id, flt, limit=limit + 1, before=before)
    return keyset_page(records, limit, by_time, MemoryPublic.of)


@router.get("/memories/{memory_id}", responses=error_responses(404))
def get_memory(principal: PrincipalDep, memory_id: MemoryId, memory: MemoryDep) -> MemoryPublic:
    """One memory."""
    return MemoryPublic.of(memory.get(principal.tenant_id, memory_id))


@router.patch("/memories/{memory_id}", responses=error_responses(400, 404, 409, 413))
def update_memory(
    principal: PrincipalDep, memory_id: MemoryId, body: MemoryUpdate, memory: MemoryDep
) -> MemoryPublic:
    """Change a memory's content (embedded again), importance or metadata (replaced whole).
    Content another memory of its scope already holds (a near-duplicate) is 409; an invalid
    part changes nothing."""
    record = memory.update(
        principal.tenant_id,
        memory_id,
        content=body.content,
        importance=body.importance,
        metadata=body.metadata,
    )
    return MemoryPublic.of(record)


@router.delete(
    "/memories/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404),
)
def delete_memory(principal: PrincipalDep, memory_id: MemoryId, memory: MemoryDep) -> Response:
    """Delete one memory."""
    memory.delete(principal.tenant_id, memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# The `/memories` forms came first; the shorter ones say what they do. They are registered
# after them: `{user_id:path}` would otherwise read ".../users/ann/memories" as user
# "ann/memories". The router matches the decoded path, so a user id that ends in "/memories"
# (sent as `org%2Fmemories`) would also match the older form as user "org": every erase reads
# its user id from the raw path instead (`_erased_user`), where only the older form's
# separator is a literal "/".
LEGACY_SUFFIX = "/memories"


def _erased_user(request: Request, routed: str) -> str:
    """The user id an erase names: the raw path after `/users/`, less a literal `/memories`,
    percent-decoded; `routed` (the router's reading) where the server gives no raw path."""
    raw = request.scope.get("raw_path")
    if not raw:
        return routed
    tail = raw.decode("latin-1").partition("/users/")[2]
    if tail.endswith(LEGACY_SUFFIX):
        tail = tail[: -len(LEGACY_SUFFIX)]
    user_id = unquote(tail)
    if not 1 <= len(user_id) <= MAX_USER_ID:
        raise invalid("user_id", f"a user id has 1-{MAX_USER_ID} characters", where="path")
    return user_id


@router.delete("/agents/{agent_id}/users/{user_id:path}/memories", responses=error_responses(404))
def erase_agent_user_memories(
    request: Request,
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    user_id: UserIdPath,
    agents: AgentsDep,
) -> Erased:
    """Same as DELETE /v1/agents/{agent_id}/users/{user_id}."""
    return erase_agent_user(request, principal, agent_id, user_id, agents)


@router.delete("/users/{user_id:path}/memories")
def erase_user_memories(
    request: Request, principal: PrincipalDep, user_id: UserIdPath, agents: AgentsDep
) -> Erased:
    """Same as DELETE /v1/users/{user_id}."""
    return erase_user(request, principal, user_id, agents)


@router.delete("/agents/{agent_id}/users/{user_id:path}", responses=error_responses(404))
def erase_agent_user(
    request: Request,
    principal: PrincipalDep,
    agent_id: OwnedAgentId,
    user_id: UserIdPath,
    agents: AgentsDep,
) -> Erased:
    """Erase everything the agent stores about one end user, in one transaction: their
    sessions with messages, runs, steps, tool calls and events; memories; core blocks with
    their history; batch items redacted. Later writes that began before it store nothing."""
    erased = _erased_user(request, user_id)
    return Erased.of(agents.erase_user(principal.tenant_id, erased, agent_id=agent_id))


@router.delete("/users/{user_id:path}")
def erase_user(
    request: Request, principal: PrincipalDep, user_id: UserIdPath, agents: AgentsDep
) -> Erased:
    """Erase everything stored about one end user across the tenant's agents, in one
    transaction (GDPR-style erase): as the per-agent erase, for every agent."""
    return Erased.of(agents.erase_user(principal.tenant_id, _erased_user(request, user_id)))
