"""Runs: state, steps, the event stream (SSE), cancel, approvals of tool calls."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from agents.records import RunFilter, RunStatus
from api import dispatch
from api.deps import (
    EngineDep,
    EventsHubDep,
    GuardsDep,
    PrincipalDep,
    RunId,
    RunQueueDep,
    RunsDep,
)
from api.idempotency import IdempotentDep
from api.schemas.common import Cursor, Limit, Page, by_time, decode_cursor, keyset_page
from api.schemas.runs import MAX_EVENT_SEQ, ApprovalsCreate, RunPublic, StepPublic
from api.streaming import fetch_run, sse_response
from core.web.errors import error_responses

router = APIRouter(
    prefix="/v1/runs", tags=["runs"], responses=error_responses(401, 404, 422, 429, 503)
)


@router.get("")
def list_runs(
    principal: PrincipalDep,
    runs: RunsDep,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only this agent's runs.")] = None,
    user_id: Annotated[
        str | None,
        Query(min_length=1, max_length=256, description="Only runs in this end user's sessions."),
    ] = None,
    session_id: Annotated[uuid.UUID | None, Query(description="Only this session's runs.")] = None,
    batch_id: Annotated[uuid.UUID | None, Query(description="Only this batch's runs.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunPublic]:
    """The tenant's runs, newest first, `limit` per page, filtered by any of status, agent,
    end user, session and batch. An id of another tenant's (or none) matches no run."""
    where = RunFilter(
        status=status, agent_id=agent_id, user_id=user_id, session_id=session_id, batch_id=batch_id
    )
    before = decode_cursor(cursor) if cursor is not None else None
    found = runs.of_tenant(principal.tenant_id, where, limit=limit + 1, before=before)
    return keyset_page(found, limit, by_time, RunPublic.of)


@router.get("/{run_id}")
def get_run(principal: PrincipalDep, run_id: RunId, runs: RunsDep) -> RunPublic:
    """A run's status, output, usage and error."""
    return RunPublic.of(runs.get(principal.tenant_id, run_id))


@router.get("/{run_id}/steps")
def list_steps(principal: PrincipalDep, run_id: RunId, runs: RunsDep) -> Page[StepPublic]:
    """Every persisted step in order, with its tool calls and the context the model saw (one
    page: a run has at most the agent's max_steps, 50)."""
    return Page(data=[StepPublic.of(s) for s in runs.steps(principal.tenant_id, run_id)])


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE of the events."}},
)
async def run_events(
    principal: PrincipalDep,
    run_id: RunId,
    engine: EngineDep,
    hub: EventsHubDep,
    guards: GuardsDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_EVENT_SEQ, description="Send events with a larger seq.")
    ] = 0,
    last_event_id: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, le=MAX_EVENT_SEQ, description="Overrides `after`."),
    ] = None,
) -> StreamingResponse:
    """The run's events as Server-Sent Events: those after `Last-Event-ID` (or `after`) from
    the log, then new ones as they happen; the stream ends after the run's final event. A
    tenant holding its most open streams and waits gets 429 (docs/api.md, "Limits")."""
    slot = guards.followers.acquire(principal.tenant_id)  # before any read: a refusal is cheap
    try:
        await fetch_run(engine, principal.tenant_id, run_id)  # 404 before the stream starts
    except BaseException:
        slot.release()
        raise
    start = last_event_id if last_event_id is not None else after
    return sse_response(engine, hub, principal.tenant_id, run_id, after=start, slot=slot)


@router.post("/{run_id}/cancel")
def cancel_run(
    principal: PrincipalDep, run_id: RunId, engine: EngineDep, queue: RunQueueDep
) -> RunPublic:
    """Stop a run: a queued one ends now (`cancelled`), a running one at its worker's next
    check (`cancel_requested` is true until then); a finished one is returned unchanged."""
    return RunPublic.of(dispatch.cancel_run(engine, queue, principal.tenant_id, run_id))


@router.post(
    "/{run_id}/approvals", response_model=RunPublic, responses=error_responses(400, 409, 413)
)
def approve_calls(
    principal: PrincipalDep,
    run_id: RunId,
    body: ApprovalsCreate,
    runs: RunsDep,
    engine: EngineDep,
    queue: RunQueueDep,
    idem: IdempotentDep,
) -> Any:
    """Decide on the tool calls a `requires_action` run waits for: approve, deny (with a
    message for the model) or edit (replacement arguments, checked against the tool's schema:
    422 when they do not fit). The run goes on, on any worker, once none is pending. A run not
    waiting, or a call decided already, is 409; another tenant's run or an unknown call 404."""

    def make() -> RunPublic:
        action = runs.get(principal.tenant_id, run_id).required_action
        decisions = body.checked(action)
        return RunPublic.of(dispatch.approve(engine, queue, principal.tenant_id, run_id, decisions))

    return idem.run(200, make)
