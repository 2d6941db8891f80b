"""`Webhooks`: what the REST layer does with a tenant's endpoints and their deliveries, one
transaction per method (the SQL is in agents/webhooks/store.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from agents.webhooks import store
from agents.webhooks.records import Delivery, NewWebhook, Webhook
from core.config import Settings
from core.db import transaction
from core.secrets import SecretBox

TimeKey = tuple[datetime, uuid.UUID]


class Webhooks:
    """The tenants' webhook endpoints, over one database engine."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def create(self, tenant_id: uuid.UUID, new: NewWebhook) -> tuple[Webhook, str]:
        """Subscribe an endpoint; returns it and its signing secret (shown this once)."""
        box = SecretBox.from_settings(self.settings)
        with transaction(self.engine) as session:
            return store.create_webhook(session, box, tenant_id, new)

    def page(self, tenant_id: uuid.UUID, *, limit: int, after: TimeKey | None) -> list[Webhook]:
        """Endpoints oldest first."""
        with transaction(self.engine) as session:
            return store.list_webhooks(session, tenant_id, limit=limit, after=after)

    def get(self, tenant_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
        """One endpoint, or NotFound."""
        with transaction(self.engine) as session:
            return store.get_webhook(session, tenant_id, webhook_id)

    def update(
        self, tenant_id: uuid.UUID, webhook_id: uuid.UUID, changes: dict[str, Any]
    ) -> Webhook:
        """Change the fields given."""
        with transaction(self.engine) as session:
            return store.update_webhook(session, tenant_id, webhook_id, changes)

    def delete(self, tenant_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
        """Unsubscribe an endpoint."""
        with transaction(self.engine) as session:
            store.delete_webhook(session, tenant_id, webhook_id)

    def deliveries(
        self,
        tenant_id: uuid.UUID,
        webhook_id: uuid.UUID | None,
        *,
        status: str | None,
        limit: int,
        before: TimeKey | None,
        run_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
    ) -> list[Delivery]:
        """The endpoint's deliveries (None: the per-request webhooks') newest first, with
        their attempts."""
        with transaction(self.engine) as session:
            return store.list_deliveries(
                session,
                tenant_id,
                webhook_id,
                status=status,
                limit=limit,
                before=before,
                run_id=run_id,
                batch_id=batch_id,
            )

    def redeliver(
        self, tenant_id: uuid.UUID, webhook_id: uuid.UUID | None, delivery_id: uuid.UUID
    ) -> Delivery:
        """Send a delivery again now."""
        with transaction(self.engine) as session:
            return store.redeliver(session, tenant_id, webhook_id, delivery_id)

    def rotate_signing_key(self, tenant_id: uuid.UUID) -> tuple[str, datetime]:
        """A new request signing key (shown this once) and its creation time."""
        box = SecretBox.from_settings(self.settings)
        with transaction(self.engine) as session:
            return store.rotate_signing_key(session, box, tenant_id)

    def signing_key_created(self, tenant_id: uuid.UUID) -> datetime | None:
        """When the request signing key was made; None: the tenant has none."""
        with transaction(self.engine) as session:
            return store.signing_key_created(session, tenant_id)
