"""The outbox: a run event an endpoint subscribed to becomes a delivery row in the same
transaction as the event, so a delivery exists exactly when its event does (a rolled-back
step leaves neither), and never twice (unique per endpoint and event id)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from agents.tables import RunRow
from agents.webhooks.records import EVENT_TYPES
from agents.webhooks.tables import DeliveryRow, WebhookRow

SUBSCRIBABLE = frozenset(EVENT_TYPES)


def event_id(run_id: uuid.UUID, seq: int) -> str:
    """The stable id of a run event, sent as `webhook-id` on every attempt."""
    return f"evt_{run_id.hex}_{seq}"


def enqueue(
    session: Session,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    seq: int,
    kind: str,
    fields: dict[str, Any],
) -> int:
    """Add a delivery for each of the tenant's enabled endpoints that wants this event;
    returns how many."""
    if kind not in SUBSCRIBABLE:
        return 0
    endpoints = session.execute(
        select(WebhookRow.id, WebhookRow.events, WebhookRow.agent_id).where(
            WebhookRow.tenant_id == tenant_id, WebhookRow.enabled.is_(True)
        )
    ).all()
    if not endpoints:
        return 0
    run = session.execute(  # an ORM query: the run's pending changes are flushed first
        select(RunRow.agent_id, RunRow.session_id, RunRow.output, RunRow.batch_id).where(
            RunRow.id == run_id
        )
    ).one()
    wanted = [
        hook_id
        for hook_id, events, agent_id in endpoints
        if kind in events and agent_id in (None, run.agent_id)
    ]
    if not wanted:
        return 0
    payload = {
        "type": kind,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": {
            "run_id": str(run_id),
            "agent_id": str(run.agent_id),
            "session_id": str(run.session_id),
            "batch_id": str(run.batch_id) if run.batch_id else None,
            **({"output": run.output} if kind != "run.requires_action" else {}),
            **fields,
        },
    }
    ident = event_id(run_id, seq)
    session.execute(
        insert(DeliveryRow)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "webhook_id": hook_id,
                    "run_id": run_id,
                    "event_id": ident,
                    "event_type": kind,
                    "payload": payload,
                }
                for hook_id in wanted
            ]
        )
        .on_conflict_do_nothing(constraint="uq_webhook_deliveries_event")
    )
    return len(wanted)
