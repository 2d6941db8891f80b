"""Webhooks: subscribe endpoints to run, batch and schedule events, list, read, change,
delete; each endpoint's deliveries with their attempts, and redelivery; the request signing
key of per-request webhooks (tenant-scoped; another tenant's are 404)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from api.deps import (
    DeliveryId,
    PrincipalDep,
    SettingsDep,
    WebhookId,
    WebhooksDep,
)
from api.idempotency import IdempotentDep
from api.schemas.common import Cursor, Limit, Page, by_time, decode_cursor, keyset_page
from api.schemas.webhooks import (
    DeliveryPublic,
    SigningKeyCreated,
    SigningKeyPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookUpdate,
    check_url,
)
from core.errors import NotFound
from core.web.errors import error_responses

router = APIRouter(
    prefix="/v1/webhooks", tags=["webhooks"], responses=error_responses(401, 422, 429)
)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated,
    responses=error_responses(400, 404, 409, 413),
)  # fmt: skip
def create_webhook(
    principal: PrincipalDep,
    body: WebhookCreate,
    hooks: WebhooksDep,
    settings: SettingsDep,
    idem: IdempotentDep,
) -> Any:
    """Subscribe an endpoint; the answer holds its signing secret, shown this once (404 for an
    `agent_id` the tenant does not have, 422 for a URL workers may not send to)."""
    check_url(body.url, settings)

    def make() -> WebhookCreated:
        hook, secret = hooks.create(principal.tenant_id, body.new_webhook())
        return WebhookCreated(**WebhookPublic.of(hook).model_dump(), secret=secret)

    return idem.run(201, make)


@router.get("")
def list_webhooks(
    principal: PrincipalDep, hooks: WebhooksDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[WebhookPublic]:
    """The tenant's endpoints, oldest first."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = hooks.page(principal.tenant_id, limit=limit + 1, after=after)
    return keyset_page(found, limit, by_time, WebhookPublic.of)


@router.post("/request-secret", status_code=status.HTTP_201_CREATED, responses=error_responses(400))
def rotate_request_secret(principal: PrincipalDep, hooks: WebhooksDep) -> SigningKeyCreated:
    """Make the tenant's request signing key, which signs the deliveries of per-request
    webhooks (`webhook_url` on a message or a batch); shown this once. Calling it again
    replaces the key: deliveries not yet sent are signed with the new one."""
    secret, created_at = hooks.rotate_signing_key(principal.tenant_id)
    return SigningKeyCreated(secret=secret, created_at=created_at)


@router.get("/request-secret", responses=error_responses(404))
def get_request_secret(principal: PrincipalDep, hooks: WebhooksDep) -> SigningKeyPublic:
    """When the request signing key was made (404: the tenant has none); never the key."""
    created_at = hooks.signing_key_created(principal.tenant_id)
    if created_at is None:
        raise NotFound("request signing key", "request-secret")
    return SigningKeyPublic(created_at=created_at)


@router.get("/request-deliveries")
def list_request_deliveries(
    principal: PrincipalDep,
    hooks: WebhooksDep,
    run_id: Annotated[uuid.UUID | None, Query(description="Only this run's.")] = None,
    batch_id: Annotated[uuid.UUID | None, Query(description="Only this batch's.")] = None,
    status_: Annotated[
        Literal["pending", "succeeded", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryPublic]:
    """The deliveries of per-request webhooks (a message's or a batch's `webhook_url`),
    newest first, each with its attempts."""
    before = decode_cursor(cursor) if cursor is not None else None
    found = hooks.deliveries(
        principal.tenant_id,
        None,
        status=status_,
        limit=limit + 1,
        before=before,
        run_id=run_id,
        batch_id=batch_id,
    )
    return keyset_page(found, limit, by_time, DeliveryPublic.of)


@router.post("/request-deliveries/{delivery_id}/redeliver", responses=error_responses(404))
def redeliver_request(
    principal: PrincipalDep, delivery_id: DeliveryId, hooks: WebhooksDep
) -> DeliveryPublic:
    """Send a per-request webhook's delivery again now, with the same event id."""
    return DeliveryPublic.of(hooks.redeliver(principal.tenant_id, None, delivery_id))


@router.get("/{webhook_id}", responses=error_responses(404))
def get_webhook(
    principal: PrincipalDep, webhook_id: WebhookId, hooks: WebhooksDep
) -> WebhookPublic:
    """One endpoint."""
    return WebhookPublic.of(hooks.get(principal.tenant_id, webhook_id))


@router.patch("/{webhook_id}", responses=error_responses(400, 404, 413))
def update_webhook(
    principal: PrincipalDep,
    webhook_id: WebhookId,
    body: WebhookUpdate,
    hooks: WebhooksDep,
    settings: SettingsDep,
) -> WebhookPublic:
    """Change the fields sent (the secret stays)."""
    check_url(body.url, settings)
    return WebhookPublic.of(hooks.update(principal.tenant_id, webhook_id, body.changes()))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
def delete_webhook(principal: PrincipalDep, webhook_id: WebhookId, hooks: WebhooksDep) -> Response:
    """Unsubscribe an endpoint; its pending deliveries are dropped."""
    hooks.delete(principal.tenant_id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", responses=error_responses(404))
def list_deliveries(
    principal: PrincipalDep,
    webhook_id: WebhookId,
    hooks: WebhooksDep,
    status_: Annotated[
        Literal["pending", "succeeded", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryPublic]:
    """The endpoint's deliveries, newest first, each with its attempts (status codes,
    latency, errors)."""
    before = decode_cursor(cursor) if cursor is not None else None
    found = hooks.deliveries(
        principal.tenant_id, webhook_id, status=status_, limit=limit + 1, before=before
    )
    return keyset_page(found, limit, by_time, DeliveryPublic.of)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", responses=error_responses(404))
def redeliver(
    principal: PrincipalDep, webhook_id: WebhookId, delivery_id: DeliveryId, hooks: WebhooksDep
) -> DeliveryPublic:
    """Send a delivery again now, with the same event id."""
    return DeliveryPublic.of(hooks.redeliver(principal.tenant_id, webhook_id, delivery_id))
