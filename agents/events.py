"""The run event log: append in the caller's transaction, notify listeners on commit, read.

Each event is written in the same transaction as the state change it reports, so an event
exists exactly when its change does: a worker that dies mid-step leaves neither behind, and a
resumed run never writes one twice. `seq` comes from the run row's counter (a row lock), so a
run's events are gap-free and ordered. `pg_notify` is transactional: listeners hear of an event
only once it is committed, and then read it from the table.

Types, in the order a run produces them:
  run.queued, run.started, step.started, message.delta (coalesced tokens of a step, provisional:
  a step retried after a crash streams again), tool.call, tool.result, message (the answer),
  then exactly one of run.succeeded, run.failed, run.cancelled, run.incomplete.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from agents.models import EventRow, RunRow
from agents.records import Event

NOTIFY_CHANNEL = "agentmill_run_events"
TERMINAL_TYPES = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.incomplete"})


def append_event(
    session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, type_: str, data: dict[str, Any]
) -> int:
    """Append an event to the run's log (in the caller's transaction); returns its seq."""
    seq = session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.tenant_id == tenant_id)
        .values(event_seq=RunRow.event_seq + 1)
        .returning(RunRow.event_seq)
    ).scalar_one()
    session.add(
        EventRow(
            run_id=run_id,
            seq=seq,
            tenant_id=tenant_id,
            type=type_,
            data={"run_id": str(run_id), **data},
        )
    )
    session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": NOTIFY_CHANNEL, "payload": f"{run_id}:{seq}"},
    )
    return int(seq)


def read_events(
    session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, *, after: int = 0, limit: int = 500
) -> list[Event]:
    """Events with seq > `after`, in order."""
    rows = session.scalars(
        select(EventRow)
        .where(EventRow.run_id == run_id, EventRow.tenant_id == tenant_id, EventRow.seq > after)
        .order_by(EventRow.seq)
        .limit(limit)
    ).all()
    return [Event(r.run_id, r.seq, r.type, dict(r.data), r.created_at) for r in rows]
