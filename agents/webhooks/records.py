"""Plain data of webhooks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RUN_EVENTS = (
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "run.incomplete",
    "run.requires_action",
)
"""A run's events an endpoint may subscribe to (and a run's `webhook_url` gets)."""
BATCH_EVENTS = ("batch.completed", "batch.cancelled")
"""A batch's end (and what its `webhook_url` gets)."""
EVENT_TYPES = (*RUN_EVENTS, *BATCH_EVENTS, "schedule.fired")
"""Every event an endpoint may subscribe to."""
DeliveryStatus = Literal["pending", "succeeded", "failed"]


@dataclass(frozen=True, kw_only=True)
class NewWebhook:
    """What a tenant subscribes."""

    url: str
    events: tuple[str, ...]
    agent_id: uuid.UUID | None = None
    """Only this agent's runs; None: every agent of the tenant."""
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, kw_only=True)
class Webhook:
    """A subscribed endpoint (its secret is never read back)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    events: tuple[str, ...]
    agent_id: uuid.UUID | None
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery."""

    attempt: int
    status_code: int | None
    latency_ms: float | None
    error: str | None
    at: datetime


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One event for one endpoint."""

    id: uuid.UUID
    webhook_id: uuid.UUID | None
    """None for a per-request webhook (`url`)."""
    url: str | None
    event_id: str
    """Stable across attempts and endpoints: receivers dedupe by it (`webhook-id`)."""
    event_type: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    tries: tuple[Attempt, ...] = field(default=())
