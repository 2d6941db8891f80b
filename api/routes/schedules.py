"""Schedules: run an agent on a cron expression or an interval; create, list, read, change
(pause and resume), delete, and each schedule's fires with their runs (tenant-scoped; another
tenant's are 404). The workers fire them (agents/schedules/firing.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from api.deps import PrincipalDep, ScheduleId, SchedulesDep
from api.idempotency import IdempotentDep
from api.schemas.common import Cursor, Limit, Page, by_time, decode_cursor, keyset_page
from api.schemas.schedules import FirePublic, ScheduleCreate, SchedulePublic, ScheduleUpdate
from core.web.errors import error_responses

router = APIRouter(
    prefix="/v1/schedules", tags=["schedules"], responses=error_responses(401, 422, 429)
)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=SchedulePublic,
    responses=error_responses(400, 404, 409, 413),
)  # fmt: skip
def create_schedule(
    principal: PrincipalDep, body: ScheduleCreate, schedules: SchedulesDep, idem: IdempotentDep
) -> Any:
    """Schedule an agent (404 for an agent or fixed session the tenant does not have, 422
    for a cron expression, time zone or session that cannot be used)."""
    return idem.run(
        201, lambda: SchedulePublic.of(schedules.create(principal.tenant_id, body.new_schedule()))
    )


@router.get("")
def list_schedules(
    principal: PrincipalDep,
    schedules: SchedulesDep,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only this agent's.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SchedulePublic]:
    """The tenant's schedules, oldest first."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = schedules.page(principal.tenant_id, agent_id=agent_id, limit=limit + 1, after=after)
    return keyset_page(found, limit, by_time, SchedulePublic.of)


@router.get("/{schedule_id}", responses=error_responses(404))
def get_schedule(
    principal: PrincipalDep, schedule_id: ScheduleId, schedules: SchedulesDep
) -> SchedulePublic:
    """One schedule, with its next fire time."""
    return SchedulePublic.of(schedules.get(principal.tenant_id, schedule_id))


@router.patch("/{schedule_id}", responses=error_responses(400, 404, 413))
def update_schedule(
    principal: PrincipalDep, schedule_id: ScheduleId, body: ScheduleUpdate, schedules: SchedulesDep
) -> SchedulePublic:
    """Change the fields sent; `enabled` pauses and resumes."""
    return SchedulePublic.of(schedules.update(principal.tenant_id, schedule_id, body.changes()))


@router.delete(
    "/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
def delete_schedule(
    principal: PrincipalDep, schedule_id: ScheduleId, schedules: SchedulesDep
) -> Response:
    """Delete a schedule; the runs it made stay."""
    schedules.delete(principal.tenant_id, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{schedule_id}/runs", responses=error_responses(404))
def list_fires(
    principal: PrincipalDep,
    schedule_id: ScheduleId,
    schedules: SchedulesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[FirePublic]:
    """The schedule's fires, newest first, each with the run it made."""
    before = decode_cursor(cursor)[0] if cursor is not None else None
    found = schedules.fires(principal.tenant_id, schedule_id, limit=limit + 1, before=before)
    return keyset_page(found, limit, lambda fire: (fire.fire_at, schedule_id), FirePublic.of)
