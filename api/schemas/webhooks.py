"""Webhook bodies: WebhookCreate, WebhookUpdate (PATCH), WebhookPublic (WebhookCreated adds
the secret, shown once), DeliveryPublic."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from agents.webhooks.records import EVENT_TYPES, Delivery, NewWebhook, Webhook
from api.schemas.common import Inbound, invalid
from core.config import Settings
from core.egress import Allowed, literal_problem, url_problem

EventType = Literal[
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "run.incomplete",
    "run.requires_action",
    "batch.completed",
    "batch.cancelled",
    "schedule.fired",
]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


def check_url(url: str | None, settings: Settings, param: str = "url") -> None:
    """422 for a URL workers may not send to (judged without DNS; workers check every
    resolved address again)."""
    if url is None:
        return
    allowed = Allowed(settings.webhook_allowed_hosts, "AGENTMILL_WEBHOOK_ALLOWED_HOSTS")
    problem = url_problem(url) or literal_problem(url, allowed)
    if problem:
        raise invalid(param, f"the URL {problem}", value=url)


def _events(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("must not repeat an event type")
    return value


class WebhookCreate(Inbound):
    """Body of POST /v1/webhooks."""

    url: Url = Field(description="Where deliveries are POSTed (http or https).")
    events: list[EventType] = Field(min_length=1, description="The event types wanted.")
    agent_id: uuid.UUID | None = Field(default=None, description="Only this agent's runs.")
    description: str = Field(default="", max_length=500)
    enabled: bool = True

    _check_events = field_validator("events")(classmethod(lambda cls, v: _events(v)))

    def new_webhook(self) -> NewWebhook:
        """The agents layer's form."""
        return NewWebhook(
            url=self.url,
            events=tuple(self.events),
            agent_id=self.agent_id,
            description=self.description,
            enabled=self.enabled,
        )


class WebhookUpdate(Inbound):
    """Body of PATCH /v1/webhooks/{id}: the fields sent change; `agent_id` may be set to null
    (every agent)."""

    url: Url | None = None
    events: list[EventType] | None = Field(default=None, min_length=1)
    agent_id: uuid.UUID | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None

    _check_events = field_validator("events")(classmethod(lambda cls, v: _events(v)))

    @field_validator("url", "events", "description", "enabled", mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """Only `agent_id` can be set to null."""
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent."""
        return self.model_dump(exclude_unset=True)


class WebhookPublic(BaseModel):
    """An endpoint as the API returns it (never its secret)."""

    id: uuid.UUID
    url: str
    events: list[str]
    agent_id: uuid.UUID | None
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, hook: Webhook) -> WebhookPublic:
        """From the agents layer's record."""
        return cls(
            id=hook.id,
            url=hook.url,
            events=list(hook.events),
            agent_id=hook.agent_id,
            description=hook.description,
            enabled=hook.enabled,
            created_at=hook.created_at,
            updated_at=hook.updated_at,
        )


class WebhookCreated(WebhookPublic):
    """A new endpoint, with the secret that signs its deliveries: shown this once."""

    secret: str = Field(description="`whsec_...`: verify deliveries with it; not shown again.")


class SigningKeyCreated(BaseModel):
    """The tenant's new request signing key: shown this once."""

    secret: str = Field(description="`whsec_...`: verifies per-request webhook deliveries.")
    created_at: datetime


class SigningKeyPublic(BaseModel):
    """Whether the tenant has a request signing key (never the key itself)."""

    created_at: datetime


class AttemptPublic(BaseModel):
    """One try at a delivery."""

    attempt: int
    status_code: int | None
    latency_ms: float | None
    error: str | None
    at: datetime


class DeliveryPublic(BaseModel):
    """One event for one endpoint, with its attempts."""

    id: uuid.UUID
    webhook_id: uuid.UUID | None = Field(description="Null for a per-request webhook.")
    url: str | None = Field(description="A per-request webhook's address (null otherwise).")
    event_id: str = Field(description="Sent as `webhook-id`; the same on every attempt.")
    event_type: str
    payload: dict[str, Any]
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    tries: list[AttemptPublic]

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryPublic:
        """From the agents layer's record."""
        return cls(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            url=delivery.url,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            payload=delivery.payload,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            tries=[AttemptPublic.model_validate(t, from_attributes=True) for t in delivery.tries],
        )
