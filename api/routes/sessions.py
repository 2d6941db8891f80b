"""Sessions and their messages: create, list an agent's, read, delete with everything under
it; posting a message starts a run."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from agents import agent_store, erasure, run_store
from api import dispatch
from api.deps import (
    AgentId,
    EngineDep,
    EventsHubDep,
    GuardsDep,
    PrincipalDep,
    RunQueueDep,
    SessionId,
)
from api.readiness import DiskRoom
from api.schemas.common import Limit, Page, decode_cursor, encode_cursor
from api.schemas.erasure import ErasedCounts, SessionDeleted
from api.schemas.runs import RunPublic
from api.schemas.sessions import (
    MAX_MESSAGE_SEQ,
    MessageCreate,
    MessagePublic,
    SessionCreate,
    SessionPublic,
    SessionQuery,
)
from api.streaming import sse_response, wait_for_end
from core.db import transaction
from core.web.errors import ErrorEnvelope, error_responses

router = APIRouter(prefix="/v1", tags=["sessions"], responses=error_responses(401, 422, 429))

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,
        pattern=r"^[\x20-\x7e]+$",
        description="Makes a retried POST return the first request's run instead of a new one.",
    ),
]


@router.post(
    "/agents/{agent_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 404, 413),
)
def create_session(
    principal: PrincipalDep, agent_id: AgentId, engine: EngineDep, body: SessionCreate | None = None
) -> SessionPublic:
    """Start a conversation with an agent, for an end user if `user_id` is given."""
    body = body or SessionCreate()
    with transaction(engine) as session:
        chat = agent_store.create_session(
            session, principal.tenant_id, agent_id, user_id=body.user_id, metadata=body.metadata
        )
    return SessionPublic.of(chat)


@router.get("/agents/{agent_id}/sessions", responses=error_responses(404))
def list_sessions(
    principal: PrincipalDep,
    agent_id: AgentId,
    params: Annotated[SessionQuery, Query()],
    engine: EngineDep,
) -> Page[SessionPublic]:
    """The agent's sessions, newest first, `limit` per page; with `user_id`, that end user's."""
    before = decode_cursor(params.cursor) if params.cursor is not None else None
    with transaction(engine) as session:
        chats = agent_store.list_sessions(
            session,
            principal.tenant_id,
            agent_id,
            user_id=params.user_id,
            limit=params.limit + 1,
            before=before,
        )
    page = chats[: params.limit]
    more = len(chats) > params.limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return Page(data=[SessionPublic.of(c) for c in page], next_cursor=next_cursor)


@router.delete("/sessions/{session_id}", responses=error_responses(404))
def delete_session(
    principal: PrincipalDep, session_id: SessionId, engine: EngineDep
) -> SessionDeleted:
    """Delete a session with its messages, runs (their steps, tool calls and events) and the
    memories written in it, in one transaction; a run in flight stops. Counts what went."""
    with transaction(engine) as session:
        report = erasure.delete_session(session, principal.tenant_id, session_id)
    return SessionDeleted(erased=ErasedCounts.of(report))


@router.get("/sessions/{session_id}", responses=error_responses(404))
def get_session(principal: PrincipalDep, session_id: SessionId, engine: EngineDep) -> SessionPublic:
    """One session."""
    with transaction(engine) as session:
        return SessionPublic.of(agent_store.get_session(session, principal.tenant_id, session_id))


@router.get("/sessions/{session_id}/messages", responses=error_responses(404))
def list_messages(
    principal: PrincipalDep,
    session_id: SessionId,
    engine: EngineDep,
    limit: Limit = 50,
    after_seq: Annotated[
        int, Query(ge=0, le=MAX_MESSAGE_SEQ, description="Messages after this seq.")
    ] = 0,
) -> Page[MessagePublic]:
    """The session's messages oldest first; `next_cursor` is the `after_seq` of the next page."""
    with transaction(engine) as session:
        messages = agent_store.list_messages(
            session, principal.tenant_id, session_id, limit=limit + 1, after_seq=after_seq
        )
    page = messages[:limit]
    next_cursor = str(page[-1].seq) if len(messages) > limit else None
    return Page(data=[MessagePublic.of(m) for m in page], next_cursor=next_cursor)


@router.get("/sessions/{session_id}/runs", responses=error_responses(404))
def list_runs(
    principal: PrincipalDep, session_id: SessionId, engine: EngineDep, limit: Limit = 50
) -> Page[RunPublic]:
    """The session's latest `limit` runs, newest first."""
    with transaction(engine) as session:
        runs = run_store.list_runs(session, principal.tenant_id, session_id, limit=limit)
    return Page(data=[RunPublic.of(r) for r in runs])


@router.post(
    "/sessions/{session_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunPublic,
    dependencies=[DiskRoom],
    responses={
        200: {
            "model": RunPublic,
            "content": {"text/event-stream": {}},
            "description": "Finished (wait), an idempotent retry, or the run's events (stream).",
        },
        **error_responses(400, 404, 413, 503, 507),
        409: {
            "model": ErrorEnvelope,
            "description": "The session is busy, or the Idempotency-Key was reused.",
        },
    },
)
async def post_message(
    request: Request,
    principal: PrincipalDep,
    session_id: SessionId,
    body: MessageCreate,
    engine: EngineDep,
    queue: RunQueueDep,
    hub: EventsHubDep,
    guards: GuardsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send a user message: 202 with the queued run; `wait` answers when it ends (200) or at
    `timeout_s` (202); `stream` answers with its events (SSE). A `stream` or `wait` of a tenant
    holding its most open streams and waits gets 429 before any run is made."""
    following = body.stream or body.wait
    slot = guards.followers.acquire(principal.tenant_id) if following else None
    try:
        new = await asyncio.to_thread(
            dispatch.start_run,
            engine,
            queue,
            principal.tenant_id,
            session_id,
            body.content,
            queue_behind=body.queue,
            idempotency_key=idempotency_key,
            metadata=body.metadata,
        )
        run = new.run
        if slot is not None and body.stream:
            stream = sse_response(engine, hub, principal.tenant_id, run.id, after=0, slot=slot)
            slot = None  # the response holds it now
            return stream
        if body.wait:
            run = await wait_for_end(
                engine,
                hub,
                principal.tenant_id,
                run.id,
                body.timeout_s,
                gone=request.is_disconnected,
            )
            code = status.HTTP_200_OK if run.finished else status.HTTP_202_ACCEPTED
        else:
            code = status.HTTP_202_ACCEPTED if new.created else status.HTTP_200_OK
    finally:
        if slot is not None:
            slot.release()
    return JSONResponse(
        RunPublic.of(run).model_dump(mode="json"),
        status_code=code,
        headers={"Location": f"/v1/runs/{run.id}"},
    )
