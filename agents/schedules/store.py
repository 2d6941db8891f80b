"""SQL for schedules, scoped to the caller's tenant (another tenant's schedule is NotFound).
Firing them is agents/schedules/firing.py's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from agents import agent_store
from agents.errors import InvalidSchedule
from agents.runs.store import run_record
from agents.schedules.records import Fire, MissedPolicy, NewSchedule, Schedule, SessionMode
from agents.schedules.tables import FireRow, ScheduleRow
from agents.schedules.timing import BadSchedule, When, check, first_fire, whole_seconds
from agents.tables import RunRow
from core.errors import NotFound

TimeKey = tuple[datetime, uuid.UUID]
TIMING = ("cron", "timezone", "interval_s", "start_at")
"""The fields whose change computes the next fire time again."""


def _mode(value: str) -> SessionMode:
    return "fixed" if value == "fixed" else "new"


def _missed(value: str) -> MissedPolicy:
    return "skip" if value == "skip" else "run_once"


def schedule_record(row: ScheduleRow) -> Schedule:
    """The public form of a schedule row."""
    return Schedule(
        id=row.id,
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        description=row.description,
        cron=row.cron,
        timezone=row.timezone,
        interval_s=row.interval_s,
        anchor_at=row.anchor_at,
        input=row.input,
        user_id=row.user_id,
        session_mode=_mode(row.session_mode),
        session_id=row.session_id,
        metadata=dict(row.metadata_),
        missed=_missed(row.missed),
        enabled=row.enabled,
        next_fire_at=row.next_fire_at if row.enabled else None,
        last_fire_at=row.last_fire_at,
        last_error=row.last_error,
        fires=row.fires,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def when_of(row: ScheduleRow) -> When:
    """The row's timing."""
    return When(row.cron, row.timezone, row.interval_s, row.anchor_at)


def _now(session: Session) -> datetime:
    now: datetime = session.execute(select(func.clock_timestamp())).scalar_one()
    return now


def _checked(when: When) -> When:
    try:
        check(when)
    except BadSchedule as exc:
        raise InvalidSchedule(str(exc), param=exc.field) from None
    return when


def _check_session(
    session: Session, row: ScheduleRow, session_id: uuid.UUID | None
) -> uuid.UUID | None:
    """A fixed session given by the caller must be the schedule's agent's and user's."""
    if row.session_mode != "fixed":
        if session_id is not None:
            raise InvalidSchedule("session_id is for session_mode 'fixed'", param="session_id")
        return None
    if session_id is None:
        return None
    chat = agent_store.get_session(session, row.tenant_id, session_id)  # NotFound
    if chat.agent_id != row.agent_id:
        raise InvalidSchedule("the session belongs to another agent", param="session_id")
    if chat.user_id != row.user_id:
        raise InvalidSchedule(
            "the session belongs to another user than the schedule's user_id",
            param="session_id",
        )
    return session_id


def create_schedule(session: Session, tenant_id: uuid.UUID, new: NewSchedule) -> Schedule:
    """Write a schedule of the tenant's agent; its first fire is the next one after now (an
    interval counts from `start_at`, by default from now)."""
    agent_store.hold_agent(session, tenant_id, new.agent_id)  # NotFound for another tenant's
    now = _now(session)
    anchor = whole_seconds(new.start_at or now)
    when = _checked(When(new.cron, new.timezone, new.interval_s, anchor))
    row = ScheduleRow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        agent_id=new.agent_id,
        description=new.description,
        cron=new.cron,
        timezone=new.timezone,
        interval_s=new.interval_s,
        anchor_at=anchor,
        input=new.input,
        user_id=new.user_id,
        session_mode=new.session_mode,
        metadata_=dict(new.metadata),
        missed=new.missed,
        enabled=new.enabled,
        next_fire_at=first_fire(when, now),
    )
    row.session_id = _check_session(session, row, new.session_id)
    session.add(row)
    session.flush()
    session.refresh(row)
    return schedule_record(row)


def _row(
    session: Session, tenant_id: uuid.UUID, schedule_id: uuid.UUID, *, lock: bool = False
) -> ScheduleRow:
    query = select(ScheduleRow).where(
        ScheduleRow.id == schedule_id, ScheduleRow.tenant_id == tenant_id
    )
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("schedule", str(schedule_id))
    return row


def get_schedule(session: Session, tenant_id: uuid.UUID, schedule_id: uuid.UUID) -> Schedule:
    """One schedule, or NotFound."""
    return schedule_record(_row(session, tenant_id, schedule_id))


def list_schedules(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    agent_id: uuid.UUID | None,
    limit: int,
    after: TimeKey | None,
) -> list[Schedule]:
    """The tenant's schedules oldest first (only one agent's, with `agent_id`)."""
    query = select(ScheduleRow).where(ScheduleRow.tenant_id == tenant_id)
    if agent_id is not None:
        query = query.where(ScheduleRow.agent_id == agent_id)
    if after is not None:
        query = query.where(tuple_(ScheduleRow.created_at, ScheduleRow.id) > after)
    query = query.order_by(ScheduleRow.created_at, ScheduleRow.id).limit(limit)
    return [schedule_record(row) for row in session.scalars(query)]


def update_schedule(
    session: Session, tenant_id: uuid.UUID, schedule_id: uuid.UUID, changes: dict[str, Any]
) -> Schedule:
    """Apply the changed fields. `cron` replaces an interval and `interval_s` a cron
    expression. A new timing, or a resume (`enabled` back to true), fires next at the first
    fire time after now: fires that fell while paused are not made up. A fixed session is
    kept while it is still the agent's and the user's, else the next fire makes one."""
    row = _row(session, tenant_id, schedule_id, lock=True)
    was_enabled = row.enabled
    now = _now(session)
    for name in ("description", "input", "user_id", "missed", "enabled", "session_mode"):
        if name in changes:
            setattr(row, name, changes[name])
    if "metadata" in changes:
        row.metadata_ = dict(changes["metadata"])
    if {"session_mode", "session_id", "user_id"} & changes.keys():
        if changes.get("session_id") is not None:
            row.session_id = _check_session(session, row, changes["session_id"])
        elif "session_id" not in changes and row.session_mode == "fixed" and row.session_id:
            chat = agent_store.get_session(session, tenant_id, row.session_id)
            row.session_id = row.session_id if chat.user_id == row.user_id else None
        else:
            row.session_id = None
    retimed = bool(set(TIMING) & changes.keys())
    if retimed:
        cron, interval = row.cron, row.interval_s
        if "cron" in changes:
            cron, interval = changes["cron"], None
        if "interval_s" in changes:
            cron, interval = None, changes["interval_s"]
        if changes.get("start_at") is not None and interval is None:
            raise InvalidSchedule("start_at is for interval_s schedules", param="start_at")
        anchor = row.anchor_at  # a new time zone alone keeps an interval's phase
        if {"interval_s", "start_at", "cron"} & changes.keys():
            anchor = whole_seconds(changes.get("start_at") or now)
        when = _checked(When(cron, changes.get("timezone", row.timezone), interval, anchor))
        row.cron, row.timezone, row.interval_s = when.cron, when.timezone, when.interval_s
        row.anchor_at = when.anchor_at
    if retimed or (row.enabled and not was_enabled):
        row.next_fire_at = first_fire(when_of(row), now)
        row.last_error = None
    row.updated_at = func.now()
    session.flush()
    session.refresh(row)
    return schedule_record(row)


def delete_schedule(session: Session, tenant_id: uuid.UUID, schedule_id: uuid.UUID) -> None:
    """Delete a schedule; the runs it made stay (ordinary runs of their sessions)."""
    session.delete(_row(session, tenant_id, schedule_id, lock=True))


def list_fires(
    session: Session,
    tenant_id: uuid.UUID,
    schedule_id: uuid.UUID,
    *,
    limit: int,
    before: datetime | None,
) -> list[Fire]:
    """The schedule's fires newest first, each with its run."""
    _row(session, tenant_id, schedule_id)
    query = (
        select(FireRow, RunRow)
        .outerjoin(RunRow, RunRow.id == FireRow.run_id)
        .where(FireRow.schedule_id == schedule_id, FireRow.tenant_id == tenant_id)
    )
    if before is not None:
        query = query.where(FireRow.fire_at < before)
    rows = session.execute(query.order_by(FireRow.fire_at.desc()).limit(limit)).all()
    return [
        Fire(fire.fire_at, fire.late, fire.created_at, run_record(run) if run else None)
        for fire, run in rows
    ]


def delete_of_user(session: Session, tenant_id: uuid.UUID, user_id: str) -> int:
    """Delete the schedules that run as this end user (an erasure); returns how many."""
    rows = list(
        session.scalars(
            select(ScheduleRow).where(
                ScheduleRow.tenant_id == tenant_id, ScheduleRow.user_id == user_id
            )
        )
    )
    for row in rows:
        session.delete(row)
    return len(rows)
