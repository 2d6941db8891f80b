"""`client.webhooks`: endpoints that receive the tenant's run, batch and schedule events
(signed; check them with `agentmill.verify_webhook`), their deliveries, and redelivery; the
request signing key of per-request webhooks (`webhook_url` on a message or a batch)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from agentmill._http import HTTP, AsyncHTTP, Call, new_key
from agentmill.errors import NotFoundError
from agentmill.models import Page, RequestSecret, Webhook, WebhookDelivery

_UNSET: Any = object()


def create_call(
    url: str,
    events: Sequence[str],
    agent_id: uuid.UUID | str | None,
    description: str | None,
    enabled: bool | None,
) -> Call:
    """POST /v1/webhooks."""
    body: dict[str, Any] = {"url": url, "events": list(events)}
    if agent_id is not None:
        body["agent_id"] = str(agent_id)
    if description is not None:
        body["description"] = description
    if enabled is not None:
        body["enabled"] = enabled
    return Call("POST", "/v1/webhooks", json=body, headers=new_key())


def update_call(webhook_id: uuid.UUID | str, fields: dict[str, Any]) -> Call:
    """PATCH /v1/webhooks/{id} with the fields given."""
    body = {k: (str(v) if k == "agent_id" and v is not None else v) for k, v in fields.items()}
    if "events" in body:
        body["events"] = list(body["events"])
    return Call("PATCH", f"/v1/webhooks/{webhook_id}", json=body)


ROTATE_SECRET = Call("POST", "/v1/webhooks/request-secret")
"""Make (or replace) the request signing key: not retried, since a repeat would replace the
key the first answer showed."""
GET_SECRET = Call("GET", "/v1/webhooks/request-secret")


def _page(path: str, limit: int, cursor: str | None, **extra: str | None) -> Call:
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    params.update({k: v for k, v in extra.items() if v is not None})
    return Call("GET", path, params=params)


def request_deliveries_call(
    run_id: uuid.UUID | str | None,
    batch_id: uuid.UUID | str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Call:
    """GET /v1/webhooks/request-deliveries with its filters."""
    return _page(
        "/v1/webhooks/request-deliveries",
        limit,
        cursor,
        run_id=str(run_id) if run_id is not None else None,
        batch_id=str(batch_id) if batch_id is not None else None,
        status=status,
    )


def _changes(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not _UNSET}


class Webhooks:
    """The tenant's webhook endpoints."""

    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self,
        url: str,
        events: Sequence[str],
        *,
        agent_id: uuid.UUID | str | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> Webhook:
        """Subscribe an endpoint; the answer's `secret` is shown this once: keep it."""
        call = create_call(url, events, agent_id, description, enabled)
        return Webhook.model_validate(self._http.send(call).json())

    def get(self, webhook_id: uuid.UUID | str) -> Webhook:
        """One endpoint (without its secret)."""
        return Webhook.model_validate(
            self._http.send(Call("GET", f"/v1/webhooks/{webhook_id}")).json()
        )

    def update(
        self,
        webhook_id: uuid.UUID | str,
        *,
        url: str = _UNSET,
        events: Sequence[str] = _UNSET,
        agent_id: uuid.UUID | str | None = _UNSET,
        description: str = _UNSET,
        enabled: bool = _UNSET,
    ) -> Webhook:
        """Change the fields given (`agent_id=None`: every agent)."""
        fields = _changes(
            url=url, events=events, agent_id=agent_id, description=description, enabled=enabled
        )
        return Webhook.model_validate(self._http.send(update_call(webhook_id, fields)).json())

    def delete(self, webhook_id: uuid.UUID | str) -> None:
        """Unsubscribe an endpoint."""
        self._http.send(Call("DELETE", f"/v1/webhooks/{webhook_id}"))

    def list(self, *, limit: int = 50) -> Iterator[Webhook]:
        """Every endpoint, oldest first."""
        cursor: str | None = None
        while True:
            page = Page[Webhook].model_validate(
                self._http.send(_page("/v1/webhooks", limit, cursor)).json()
            )
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def deliveries(
        self,
        webhook_id: uuid.UUID | str,
        *,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WebhookDelivery]:
        """One page of the endpoint's deliveries, newest first, with their attempts."""
        call = _page(f"/v1/webhooks/{webhook_id}/deliveries", limit, cursor, status=status)
        return Page[WebhookDelivery].model_validate(self._http.send(call).json())

    def redeliver(
        self, webhook_id: uuid.UUID | str, delivery_id: uuid.UUID | str
    ) -> WebhookDelivery:
        """Send a delivery again now, with the same event id."""
        call = Call("POST", f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
        return WebhookDelivery.model_validate(self._http.send(call).json())

    def rotate_request_secret(self) -> RequestSecret:
        """Make the tenant's request signing key, which signs the deliveries of per-request
        webhooks; its `secret` is shown this once. Calling it again replaces the key:
        deliveries not yet sent are signed with the new one."""
        return RequestSecret.model_validate(self._http.send(ROTATE_SECRET).json())

    def request_secret(self) -> RequestSecret | None:
        """When the request signing key was made (never the key); None if there is none."""
        try:
            return RequestSecret.model_validate(self._http.send(GET_SECRET).json())
        except NotFoundError:
            return None

    def request_deliveries(
        self,
        *,
        run_id: uuid.UUID | str | None = None,
        batch_id: uuid.UUID | str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WebhookDelivery]:
        """One page of the per-request webhooks' deliveries (a message's or a batch's
        `webhook_url`), newest first, with their attempts."""
        call = request_deliveries_call(run_id, batch_id, status, limit, cursor)
        return Page[WebhookDelivery].model_validate(self._http.send(call).json())

    def redeliver_request(self, delivery_id: uuid.UUID | str) -> WebhookDelivery:
        """Send a per-request webhook's delivery again now, with the same event id."""
        call = Call("POST", f"/v1/webhooks/request-deliveries/{delivery_id}/redeliver")
        return WebhookDelivery.model_validate(self._http.send(call).json())


class AsyncWebhooks:
    """The tenant's webhook endpoints (async)."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        url: str,
        events: Sequence[str],
        *,
        agent_id: uuid.UUID | str | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> Webhook:
        """Subscribe an endpoint (see `Webhooks.create`)."""
        call = create_call(url, events, agent_id, description, enabled)
        return Webhook.model_validate((await self._http.send(call)).json())

    async def get(self, webhook_id: uuid.UUID | str) -> Webhook:
        """One endpoint."""
        response = await self._http.send(Call("GET", f"/v1/webhooks/{webhook_id}"))
        return Webhook.model_validate(response.json())

    async def update(
        self,
        webhook_id: uuid.UUID | str,
        *,
        url: str = _UNSET,
        events: Sequence[str] = _UNSET,
        agent_id: uuid.UUID | str | None = _UNSET,
        description: str = _UNSET,
        enabled: bool = _UNSET,
    ) -> Webhook:
        """Change the fields given."""
        fields = _changes(
            url=url, events=events, agent_id=agent_id, description=description, enabled=enabled
        )
        response = await self._http.send(update_call(webhook_id, fields))
        return Webhook.model_validate(response.json())

    async def delete(self, webhook_id: uuid.UUID | str) -> None:
        """Unsubscribe an endpoint."""
        await self._http.send(Call("DELETE", f"/v1/webhooks/{webhook_id}"))

    async def deliveries(
        self,
        webhook_id: uuid.UUID | str,
        *,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WebhookDelivery]:
        """One page of the endpoint's deliveries."""
        call = _page(f"/v1/webhooks/{webhook_id}/deliveries", limit, cursor, status=status)
        return Page[WebhookDelivery].model_validate((await self._http.send(call)).json())

    async def redeliver(
        self, webhook_id: uuid.UUID | str, delivery_id: uuid.UUID | str
    ) -> WebhookDelivery:
        """Send a delivery again now."""
        call = Call("POST", f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
        return WebhookDelivery.model_validate((await self._http.send(call)).json())

    async def rotate_request_secret(self) -> RequestSecret:
        """Make (or replace) the request signing key (see `Webhooks.rotate_request_secret`)."""
        return RequestSecret.model_validate((await self._http.send(ROTATE_SECRET)).json())

    async def request_secret(self) -> RequestSecret | None:
        """When the request signing key was made (never the key); None if there is none."""
        try:
            return RequestSecret.model_validate((await self._http.send(GET_SECRET)).json())
        except NotFoundError:
            return None

    async def request_deliveries(
        self,
        *,
        run_id: uuid.UUID | str | None = None,
        batch_id: uuid.UUID | str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WebhookDelivery]:
        """One page of the per-request webhooks' deliveries (see `Webhooks`)."""
        call = request_deliveries_call(run_id, batch_id, status, limit, cursor)
        return Page[WebhookDelivery].model_validate((await self._http.send(call)).json())

    async def redeliver_request(self, delivery_id: uuid.UUID | str) -> WebhookDelivery:
        """Send a per-request webhook's delivery again now."""
        call = Call("POST", f"/v1/webhooks/request-deliveries/{delivery_id}/redeliver")
        return WebhookDelivery.model_validate((await self._http.send(call)).json())
