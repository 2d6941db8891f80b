"""The `webhook_url` a message or a batch may carry: checked at the edge, so a request whose
events could never be delivered is refused (422) rather than accepted and silently dropped."""

from __future__ import annotations

import uuid

from agents.webhooks.facade import Webhooks
from api.schemas.common import invalid
from api.schemas.webhooks import check_url
from core.config import Settings

KEY_ROUTE = "POST /v1/webhooks/request-secret"


def check_request_webhook(
    url: str | None, settings: Settings, hooks: Webhooks, tenant_id: uuid.UUID
) -> None:
    """422 (param `webhook_url`) for a URL workers may not send to, or when the tenant has no
    request signing key to sign its deliveries with."""
    if url is None:
        return
    check_url(url, settings, "webhook_url")
    if hooks.signing_key_created(tenant_id) is None:
        raise invalid(
            "webhook_url",
            f"per-request webhooks are signed with the request signing key: create it first "
            f"({KEY_ROUTE})",
            value=url,
        )
