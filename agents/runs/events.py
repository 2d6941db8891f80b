"""The run event log: append in the caller's transaction, notify listeners on commit, read.

Each event is written in the same transaction as the state change it reports, so an event
exists exactly when its change does: a worker that dies mid-step leaves neither behind, and a
resumed run never writes one twice. `seq` comes from the run row's counter (a row lock), so a
run's events are gap-free and ordered. `pg_notify` is transactional: listeners hear of an event
only once it is committed, and then read it from the table.

Types, in the order a run produces them:
  run.queued, run.started, step.started, message.delta (coalesced tokens of a step, provisional:
  a step retried after a crash streams again), tool.call, tool.result, message (the answer),
  then exactly one of run.succeeded, run.failed, run.cancelled, run.incomplete. During an
  outage: run.waiting before each retry of the model, run.released when an attempt hands the
  run back. `append_event` refuses any other type, and tests/sdk/test_event_parity.py keeps
  the SDK's typed events in step with this list.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from agents.records import Event
from agents.tables import EventRow

NOTIFY_CHANNEL = "agentmill_run_events"
TERMINAL_TYPES = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.incomplete"})
EVENT_TYPES = TERMINAL_TYPES | {
    "run.queued",
    "run.started",
    "step.started",
    "message.delta",
    "tool.call",
    "tool.result",
    "message",
    "run.waiting",
    "run.released",
}
"""Every type a run event may have."""


# One round trip: bump the run's counter (locking its row), insert the event with that seq,
# notify. Table and column names are those of RunRow and EventRow.
_APPEND = text(
    """
    WITH counter AS (
        UPDATE runs SET event_seq = event_seq + 1
        WHERE id = :run_id AND tenant_id = :tenant_id
        RETURNING event_seq
    ), event AS (
        INSERT INTO run_events (run_id, seq, tenant_id, type, data)
        SELECT :run_id, event_seq, :tenant_id, :type, CAST(:data AS jsonb) FROM counter
        RETURNING seq
    )
    SELECT seq, pg_notify(:channel, CAST(:run_id AS text) || ':' || seq) FROM event
    """
)


def append_event(
    session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, type_: str, data: dict[str, Any]
) -> int:
    """Append an event to the run's log (in the caller's transaction); returns its seq.

    One statement rather than an ORM update, insert and notify: events are a third of a run's
    statements, and this is its hottest write (see docs/benchmarks.md). A type outside
    `EVENT_TYPES` is a bug here, refused before anything is written."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown run event type {type_!r}")
    seq = session.execute(
        _APPEND,
        {
            "run_id": run_id,
            "tenant_id": tenant_id,
            "type": type_,
            "data": json.dumps({"run_id": str(run_id), **data}),
            "channel": NOTIFY_CHANNEL,
        },
    ).scalar_one()
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
