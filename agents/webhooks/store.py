"""SQL for webhooks and their deliveries, scoped to the caller's tenant (another tenant's
endpoint or delivery is NotFound). Signing secrets are sealed before they are written."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from agents import agent_store
from agents.webhooks.records import Attempt, Delivery, DeliveryStatus, NewWebhook, Webhook
from agents.webhooks.signing import new_secret
from agents.webhooks.tables import AttemptRow, DeliveryRow, SigningKeyRow, WebhookRow
from core.errors import NotFound
from core.secrets import SecretBox

TimeKey = tuple[datetime, uuid.UUID]


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        events=tuple(row.events),
        agent_id=row.agent_id,
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _status(value: str) -> DeliveryStatus:
    if value == "succeeded":
        return "succeeded"
    return "failed" if value == "failed" else "pending"


def delivery_record(row: DeliveryRow, tries: Sequence[AttemptRow] = ()) -> Delivery:
    """The public form of a delivery row (with its attempts, oldest first)."""
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        url=row.url,
        event_id=row.event_id,
        event_type=row.event_type,
        payload=dict(row.payload),
        status=_status(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        tries=tuple(Attempt(t.attempt, t.status_code, t.latency_ms, t.error, t.at) for t in tries),
    )


def _row(session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID) -> WebhookRow:
    row = session.scalar(
        select(WebhookRow).where(WebhookRow.id == webhook_id, WebhookRow.tenant_id == tenant_id)
    )
    if row is None:
        raise NotFound("webhook", str(webhook_id))
    return row


def create_webhook(
    session: Session, box: SecretBox, tenant_id: uuid.UUID, new: NewWebhook
) -> tuple[Webhook, str]:
    """Subscribe an endpoint; returns it with its secret (shown this once)."""
    if new.agent_id is not None:
        agent_store.hold_agent(session, tenant_id, new.agent_id)
    secret = new_secret()
    row = WebhookRow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        url=new.url,
        events=list(new.events),
        agent_id=new.agent_id,
        secret=box.seal(secret),
        description=new.description,
        enabled=new.enabled,
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return _webhook(row), secret


def list_webhooks(
    session: Session, tenant_id: uuid.UUID, *, limit: int, after: TimeKey | None
) -> list[Webhook]:
    """The tenant's endpoints oldest first."""
    query = select(WebhookRow).where(WebhookRow.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tuple_(WebhookRow.created_at, WebhookRow.id) > after)
    query = query.order_by(WebhookRow.created_at, WebhookRow.id).limit(limit)
    return [_webhook(row) for row in session.scalars(query)]


def get_webhook(session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
    """One endpoint, or NotFound."""
    return _webhook(_row(session, tenant_id, webhook_id))


def update_webhook(
    session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID, changes: dict[str, Any]
) -> Webhook:
    """Apply the changed fields (url, events, agent_id, description, enabled)."""
    row = _row(session, tenant_id, webhook_id)
    if changes.get("agent_id") is not None:
        agent_store.hold_agent(session, tenant_id, changes["agent_id"])
    for name, value in changes.items():
        setattr(row, name, list(value) if name == "events" else value)
    row.updated_at = func.now()
    session.flush()
    session.refresh(row)
    return _webhook(row)


def delete_webhook(session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
    """Unsubscribe an endpoint; its pending deliveries go with it."""
    session.delete(_row(session, tenant_id, webhook_id))


def _of_target(session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID | None) -> Any:
    """The condition on deliveries of one endpoint (NotFound for another tenant's), or with
    `webhook_id` None of the tenant's per-request webhooks."""
    if webhook_id is None:
        return and_(DeliveryRow.tenant_id == tenant_id, DeliveryRow.webhook_id.is_(None))
    _row(session, tenant_id, webhook_id)
    return and_(DeliveryRow.tenant_id == tenant_id, DeliveryRow.webhook_id == webhook_id)


def list_deliveries(
    session: Session,
    tenant_id: uuid.UUID,
    webhook_id: uuid.UUID | None,
    *,
    status: str | None,
    limit: int,
    before: TimeKey | None,
    run_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
) -> list[Delivery]:
    """The endpoint's deliveries (`webhook_id` None: the per-request webhooks'), newest
    first, each with its attempts; only one run's or batch's with `run_id`, `batch_id`."""
    query = select(DeliveryRow).where(_of_target(session, tenant_id, webhook_id))
    if run_id is not None:
        query = query.where(DeliveryRow.run_id == run_id)
    if batch_id is not None:
        query = query.where(DeliveryRow.batch_id == batch_id)
    if status is not None:
        query = query.where(DeliveryRow.status == status)
    if before is not None:
        query = query.where(tuple_(DeliveryRow.created_at, DeliveryRow.id) < before)
    rows = list(
        session.scalars(
            query.order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc()).limit(limit)
        )
    )
    tries: dict[uuid.UUID, list[AttemptRow]] = {row.id: [] for row in rows}
    if rows:
        for attempt in session.scalars(
            select(AttemptRow)
            .where(AttemptRow.delivery_id.in_(list(tries)))
            .order_by(AttemptRow.delivery_id, AttemptRow.attempt, AttemptRow.id)
        ):
            tries[attempt.delivery_id].append(attempt)
    return [delivery_record(row, tries[row.id]) for row in rows]


def redeliver(
    session: Session, tenant_id: uuid.UUID, webhook_id: uuid.UUID | None, delivery_id: uuid.UUID
) -> Delivery:
    """Send a delivery again now, with the same event id (a failed one is retried again for
    the usual period from now); `webhook_id` None: a per-request webhook's delivery."""
    target = _of_target(session, tenant_id, webhook_id)
    row = session.scalar(
        select(DeliveryRow).where(DeliveryRow.id == delivery_id, target).with_for_update()
    )
    if row is None:
        raise NotFound("delivery", str(delivery_id))
    if row.status != "pending":
        row.created_at = func.now()  # the retry period starts again
    row.status, row.next_attempt_at = "pending", func.now()
    session.flush()
    session.refresh(row)
    return delivery_record(row)


def rotate_signing_key(
    session: Session, box: SecretBox, tenant_id: uuid.UUID
) -> tuple[str, datetime]:
    """A new request signing key for the tenant (replacing the one it had); returns it, shown
    this once, with its creation time. Deliveries not yet sent are signed with the new key."""
    secret = new_secret()
    created: datetime = session.execute(
        insert(SigningKeyRow)
        .values(tenant_id=tenant_id, secret=box.seal(secret))
        .on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"secret": box.seal(secret), "created_at": func.now()},
        )
        .returning(SigningKeyRow.created_at)
    ).scalar_one()
    return secret, created


def signing_key_created(session: Session, tenant_id: uuid.UUID) -> datetime | None:
    """When the tenant's request signing key was made (None: it has none)."""
    return session.scalar(
        select(SigningKeyRow.created_at).where(SigningKeyRow.tenant_id == tenant_id)
    )
