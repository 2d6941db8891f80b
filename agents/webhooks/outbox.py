"""The outbox: an event an endpoint subscribed to becomes a delivery row in the same
transaction as the event, so a delivery exists exactly when its event does (a rolled-back step
leaves neither), and never twice (unique per endpoint and event id).

Three producers: a run's events (`append_event`, agents/runs/events.py), a batch that ends
(agents/batches/store.py) and a schedule that fires (agents/schedules/firing.py). Besides the
tenant's subscribed endpoints, a run or batch created with a `webhook_url` gets its own events
there (a per-request delivery, signed with the tenant's request signing key)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from agents.records import Run
from agents.tables import BatchRow, RunRow
from agents.webhooks.records import BATCH_EVENTS, EVENT_TYPES, RUN_EVENTS
from agents.webhooks.tables import DeliveryRow, WebhookRow

SUBSCRIBABLE = frozenset(EVENT_TYPES)


def event_id(run_id: uuid.UUID, seq: int) -> str:
    """The stable id of a run event, sent as `webhook-id` on every attempt."""
    return f"evt_{run_id.hex}_{seq}"


@dataclass(frozen=True)
class Event:
    """One event to deliver: who it is about and what is sent."""

    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    kind: str
    ident: str
    data: dict[str, Any]
    run_id: uuid.UUID | None = None
    batch_id: uuid.UUID | None = None
    request_url: str | None = None
    """The per-request webhook of the run or batch, if it has one."""


def _write(session: Session, event: Event) -> int:
    """A delivery of the event for each enabled endpoint of the tenant that wants it, and one
    to its per-request URL; returns how many."""
    endpoints = session.execute(
        select(WebhookRow.id, WebhookRow.events, WebhookRow.agent_id).where(
            WebhookRow.tenant_id == event.tenant_id, WebhookRow.enabled.is_(True)
        )
    ).all()
    wanted = [
        hook_id
        for hook_id, events, agent_id in endpoints
        if event.kind in events and agent_id in (None, event.agent_id)
    ]
    if not wanted and event.request_url is None:
        return 0
    payload = {
        "type": event.kind,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": event.data,
    }
    common = {
        "tenant_id": event.tenant_id,
        "run_id": event.run_id,
        "batch_id": event.batch_id,
        "event_id": event.ident,
        "event_type": event.kind,
        "payload": payload,
    }
    if wanted:
        session.execute(
            insert(DeliveryRow)
            .values([{"id": uuid.uuid4(), "webhook_id": hook, **common} for hook in wanted])
            .on_conflict_do_nothing(constraint="uq_webhook_deliveries_event")
        )
    if event.request_url is not None:
        session.execute(
            insert(DeliveryRow)
            .values(id=uuid.uuid4(), webhook_id=None, url=event.request_url, **common)
            .on_conflict_do_nothing(
                index_elements=["event_id"], index_where=DeliveryRow.webhook_id.is_(None)
            )
        )
    return len(wanted) + (event.request_url is not None)


def enqueue(
    session: Session,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    seq: int,
    kind: str,
    fields: dict[str, Any],
) -> int:
    """Deliveries of one run event (a no-op for kinds nobody can subscribe to)."""
    if kind not in RUN_EVENTS:
        return 0
    run = session.execute(  # an ORM query: the run's pending changes are flushed first
        select(
            RunRow.agent_id, RunRow.session_id, RunRow.output, RunRow.batch_id, RunRow.webhook_url
        ).where(RunRow.id == run_id)
    ).one()
    data = {
        "run_id": str(run_id),
        "agent_id": str(run.agent_id),
        "session_id": str(run.session_id),
        "batch_id": str(run.batch_id) if run.batch_id else None,
        **({"output": run.output} if kind != "run.requires_action" else {}),
        **fields,
    }
    return _write(
        session,
        Event(
            tenant_id,
            run.agent_id,
            kind,
            event_id(run_id, seq),
            data,
            run_id=run_id,
            request_url=run.webhook_url,
        ),
    )


def enqueue_batch_end(session: Session, batch: BatchRow, counts: dict[str, int]) -> int:
    """Deliveries of a batch that ended (`batch.completed` or `batch.cancelled`)."""
    kind = "batch.cancelled" if batch.status == "cancelled" else "batch.completed"
    assert kind in BATCH_EVENTS
    data = {
        "batch_id": str(batch.id),
        "agent_id": str(batch.agent_id),
        "status": batch.status,
        "counts": counts,
        "metadata": dict(batch.metadata_),
    }
    event = Event(
        batch.tenant_id,
        batch.agent_id,
        kind,
        f"evt_batch_{batch.id.hex}",
        data,
        batch_id=batch.id,
        request_url=batch.webhook_url,
    )
    return _write(session, event)


def enqueue_schedule_fired(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    schedule_id: uuid.UUID,
    fire_at: datetime,
    run: Run,
    *,
    late: bool,
) -> int:
    """Deliveries of a schedule's fire (the run it made is in the data)."""
    data = {
        "schedule_id": str(schedule_id),
        "agent_id": str(agent_id),
        "fire_at": fire_at.isoformat(),
        "late": late,
        "run_id": str(run.id),
        "session_id": str(run.session_id),
    }
    ident = f"evt_sched_{schedule_id.hex}_{int(fire_at.timestamp())}"
    return _write(session, Event(tenant_id, agent_id, "schedule.fired", ident, data, run_id=run.id))
