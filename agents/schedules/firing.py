"""Firing schedules: every worker's scheduler thread calls `fire_due` each
AGENTMILL_SCHEDULE_POLL_S; any number of workers may do so at once.

Exactly one run per fire time: a pass takes due schedules with `FOR UPDATE SKIP LOCKED` (two
workers never handle one schedule at once), writes for each fire time a `schedule_fires` row
(primary key: schedule and fire time; an insert that finds one already there makes no run),
the run (and its session) and the `schedule.fired` webhook deliveries, and moves
`next_fire_at` past now, all in one transaction per schedule. A worker killed mid-pass rolls
it all back and the next pass, anywhere, does it again; a committed fire is never redone.

Lateness: a fire time at most AGENTMILL_SCHEDULE_GRACE_S late (a busy or restarting worker)
is on time and gets its run, late. Later than that it was missed (everything was down): the
schedule's `missed` policy says `run_once` (one run, marked `late`, stands for all the missed
fire times) or `skip` (none). A schedule whose fire cannot be made (its fixed session's agent
was changed, an erased user...) records `last_error` and is paused.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from agents import agent_store
from agents.runs import store as run_store
from agents.runs.store import NewRun
from agents.schedules.store import when_of
from agents.schedules.tables import FireRow, ScheduleRow
from agents.schedules.timing import due
from agents.webhooks import outbox
from agents.worker.queue import Send, send_committed
from core.db import transaction
from core.errors import UserError

log = logging.getLogger(__name__)

PASS_LIMIT = 50
"""Most schedules one pass handles (the next pass takes the rest)."""


def fire_due(engine: Engine, send: Send, grace_s: float) -> int:
    """One pass over the due schedules, one transaction each; sends the runs made after
    each commit (a fixed session's run that waits behind its active one is sent when that
    ends). Returns how many runs were made."""
    with transaction(engine) as session:
        due_ids = list(
            session.scalars(
                select(ScheduleRow.id)
                .where(
                    ScheduleRow.enabled.is_(True),
                    ScheduleRow.next_fire_at <= func.clock_timestamp(),
                )
                .order_by(ScheduleRow.next_fire_at)
                .limit(PASS_LIMIT)
            )
        )
    made = 0
    for schedule_id in due_ids:
        with transaction(engine) as session:
            count, started = fire_one(session, schedule_id, grace_s)
        made += count
        send_committed(send, started, "scheduled run")
    return made


def fire_one(
    session: Session, schedule_id: uuid.UUID, grace_s: float
) -> tuple[int, list[uuid.UUID]]:
    """Fire one schedule's due times, if no other worker holds it; returns how many runs it
    made and those to send."""
    row = session.scalar(
        select(ScheduleRow).where(ScheduleRow.id == schedule_id).with_for_update(skip_locked=True)
    )
    now: datetime = session.execute(select(func.clock_timestamp())).scalar_one()
    if row is None or not row.enabled or row.next_fire_at is None or row.next_fire_at > now:
        return 0, []  # held by another worker, deleted, paused, or already fired meanwhile
    owed = due(when_of(row), row.next_fire_at, now, grace_s)
    times = [(moment, False) for moment in owed.on_time]
    if owed.latest_missed is not None:
        if row.missed == "run_once":
            times.insert(0, (owed.latest_missed, True))
        log.info(
            "schedule %s: fires up to %s missed (policy %s)",
            row.id,
            owed.latest_missed.isoformat(),
            row.missed,
        )
    row.next_fire_at = owed.following
    made, started = 0, []
    for moment, late in times:
        try:
            with session.begin_nested():
                fired = _fire(session, row, moment, late=late)
        except UserError as exc:  # the run cannot be made: pause rather than retry forever
            row.enabled, row.last_error = False, f"fire at {moment.isoformat()}: {exc}"
            log.warning("schedule %s paused: %s", row.id, row.last_error)
            break
        if fired is not None:
            made += 1
            if fired.start_now:
                started.append(fired.run.id)
    row.updated_at = func.now()
    return made, started


def _fire(session: Session, row: ScheduleRow, moment: datetime, *, late: bool) -> NewRun | None:
    """One fire time's run, unless the fire was already made (None)."""
    claimed = session.execute(
        insert(FireRow)
        .values(schedule_id=row.id, fire_at=moment, tenant_id=row.tenant_id, late=late)
        .on_conflict_do_nothing(index_elements=["schedule_id", "fire_at"])
        .returning(FireRow.schedule_id)
    ).first()
    if claimed is None:
        return None
    stamp = {"schedule_id": str(row.id), "fire_at": moment.isoformat()}
    if row.session_mode == "fixed" and row.session_id is not None:
        session_id = row.session_id
    else:
        chat = agent_store.create_session(
            session, row.tenant_id, row.agent_id, user_id=row.user_id, metadata=stamp
        )
        session_id = chat.id
        if row.session_mode == "fixed":
            row.session_id = session_id  # every later fire runs in it
    new = run_store.create_run(
        session,
        row.tenant_id,
        session_id,
        row.input,
        queue=True,  # a fixed session's previous run may still be going: wait behind it
        metadata={**row.metadata_, **stamp},
    )
    session.execute(
        update(FireRow)
        .where(FireRow.schedule_id == row.id, FireRow.fire_at == moment)
        .values(run_id=new.run.id)
    )
    row.fires += 1
    row.last_fire_at = moment
    row.last_error = None
    outbox.enqueue_schedule_fired(
        session, row.tenant_id, row.agent_id, row.id, moment, new.run, late=late
    )
    return new
