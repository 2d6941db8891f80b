"""Sessions and their messages: create, list an agent's, read, delete with everything under
it; posting a message starts a run."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from agents.records import Message
from api import dispatch
from api.deps import (
    AgentId,
    AgentsDep,
    EngineDep,
    EventsHubDep,
    GuardsDep,
    PrincipalDep,
    RunQueueDep,
    RunsDep,
    SessionId,
    SettingsDep,
    WebhooksDep,
)
from api.idempotency import IdempotentDep
from api.readiness import DiskRoom
from api.request_webhooks import check_request_webhook
from api.schemas.common import (
    Cursor,
    Limit,
    Page,
    by_time,
    decode_cursor,
    decode_position,
    keyset_page,
)
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
    response_model=SessionPublic,
    responses=error_responses(400, 404, 409, 413),
)
def create_session(
    principal: PrincipalDep,
    agent_id: AgentId,
    agents: AgentsDep,
    idem: IdempotentDep,
    body: SessionCreate | None = None,
) -> Any:
    """Start a conversation with an agent, for an end user if `user_id` is given."""
    sent = body or SessionCreate()

    def make() -> SessionPublic:
        chat = agents.start_session(
            principal.tenant_id, agent_id, user_id=sent.user_id, metadata=sent.metadata
        )
        return SessionPublic.of(chat)

    return idem.run(201, make)


@router.get("/agents/{agent_id}/sessions", responses=error_responses(404))
def list_sessions(
    principal: PrincipalDep,
    agent_id: AgentId,
    params: Annotated[SessionQuery, Query()],
    agents: AgentsDep,
) -> Page[SessionPublic]:
    """The agent's sessions, newest first, `limit` per page; with `user_id`, that end user's."""
    before = decode_cursor(params.cursor) if params.cursor is not None else None
    chats = agents.sessions(
        principal.tenant_id, agent_id, user_id=params.user_id, limit=params.limit + 1, before=before
    )
    return keyset_page(chats, params.limit, by_time, SessionPublic.of)


@router.delete("/sessions/{session_id}", responses=error_responses(404))
def delete_session(
    principal: PrincipalDep, session_id: SessionId, agents: AgentsDep
) -> SessionDeleted:
    """Delete a session with its messages, runs (their steps, tool calls and events) and the
    memories written in it, in one transaction; a run in flight stops. Counts what went."""
    report = agents.delete_session(principal.tenant_id, session_id)
    return SessionDeleted(erased=ErasedCounts.of(report))


@router.get("/sessions/{session_id}", responses=error_responses(404))
def get_session(principal: PrincipalDep, session_id: SessionId, agents: AgentsDep) -> SessionPublic:
    """One session."""
    return SessionPublic.of(agents.session(principal.tenant_id, session_id))


@router.get("/sessions/{session_id}/messages", responses=error_responses(404))
def list_messages(
    principal: PrincipalDep,
    session_id: SessionId,
    agents: AgentsDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    after_seq: Annotated[
        int, Query(ge=0, le=MAX_MESSAGE_SEQ, description="Only messages after this seq.")
    ] = 0,
) -> Page[MessagePublic]:
    """The session's messages oldest first, `limit` per page; `after_seq` starts the list
    after a message already seen (for polling), `cursor` is the next page of a list."""
    if cursor is not None:
        after_seq = max(after_seq, decode_position(cursor, MAX_MESSAGE_SEQ))
    messages = agents.messages(
        principal.tenant_id, session_id, limit=limit + 1, after_seq=after_seq
    )
    return keyset_page(messages, limit, _by_seq, MessagePublic.of)


def _by_seq(message: Message) -> int:
    return message.seq


@router.get("/sessions/{session_id}/runs", responses=error_responses(404))
def list_runs(
    principal: PrincipalDep,
    session_id: SessionId,
    runs: RunsDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunPublic]:
    """The session's runs, newest first, `limit` per page."""
    before = decode_cursor(cursor) if cursor is not None else None
    found = runs.of_session(principal.tenant_id, session_id, limit=limit + 1, before=before)
    return keyset_page(found, limit, by_time, RunPublic.of)


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
    hooks: WebhooksDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Send a user message: 202 with the queued run; `wait` answers when it ends or waits for
    a tool call's approval (200) or at `timeout_s` (202); `stream` answers with its events
    (SSE). A `stream` or `wait` of a tenant holding its most open streams and waits gets 429
    before any run is made."""
    await asyncio.to_thread(
        check_request_webhook, body.webhook_url, settings, hooks, principal.tenant_id
    )
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
            webhook_url=body.webhook_url,
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
            settled = run.finished or run.status == "requires_action"
            code = status.HTTP_200_OK if settled else status.HTTP_202_ACCEPTED
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
