"""/v1/webhooks over the real app and database: subscribing (the secret shown once), the
checks of where deliveries may go, deliveries listed with their attempts, redelivery."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api import support
from tests.api.support import Headers

URL = "https://hooks.example.com/in"


def test_subscribe_list_read_change_and_delete(client: TestClient, auth: Headers) -> None:
    created = client.post(
        "/v1/webhooks", json={"url": URL, "events": ["run.succeeded", "run.failed"]}, headers=auth
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["agent_id"] is None
    assert hook["enabled"] is True
    shown = client.get(f"/v1/webhooks/{hook['id']}", headers=auth)
    assert "secret" not in shown.json()
    assert hook["secret"] not in client.get("/v1/webhooks", headers=auth).text
    patched = client.patch(
        f"/v1/webhooks/{hook['id']}",
        json={"enabled": False, "events": ["run.requires_action"]},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["enabled"], patched.json()["events"]) == (False, ["run.requires_action"])
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "http://169.254.169.254/latest", "events": ["run.failed"]}, "url"),
        ({"url": "http://10.0.0.5/hook", "events": ["run.failed"]}, "url"),
        ({"url": "http://localhost:9000/hook", "events": ["run.failed"]}, "url"),
        ({"url": "ftp://example.com/", "events": ["run.failed"]}, "url"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": ["run.exploded"]}, "events"),
        ({"url": URL, "events": ["run.failed", "run.failed"]}, "events"),
        ({"url": URL, "events": ["run.failed"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_subscriptions_are_refused(
    client: TestClient, auth: Headers, body: dict[str, Any], param: str
) -> None:
    response = client.post("/v1/webhooks", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"].startswith(param), response.json()
    assert client.get("/v1/webhooks", headers=auth).json()["data"] == []


def test_an_unknown_agent_filter_is_404(client: TestClient, auth: Headers) -> None:
    body = {
        "url": URL,
        "events": ["run.failed"],
        "agent_id": "00000000-0000-4000-8000-000000000000",
    }
    assert client.post("/v1/webhooks", json=body, headers=auth).status_code == 404


def test_deliveries_are_listed_and_can_be_sent_again(
    client: TestClient, engine: Engine, auth: Headers
) -> None:
    agent = client.post("/v1/agents", json={"name": "a"}, headers=auth).json()
    hook = client.post(
        "/v1/webhooks",
        json={"url": URL, "events": ["run.succeeded"], "agent_id": agent["id"]},
        headers=auth,
    ).json()
    chat = client.post(f"/v1/agents/{agent['id']}/sessions", headers=auth).json()
    run = client.post(
        f"/v1/sessions/{chat['id']}/messages", json={"content": "hi"}, headers=auth
    ).json()
    support.start(engine, run["id"])
    support.finish(engine, run["id"], output="Hello!")

    page = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=auth).json()
    (delivery,) = page["data"]
    assert delivery["status"] == "pending"
    assert delivery["event_type"] == "run.succeeded"
    assert delivery["payload"]["data"]["output"] == "Hello!"
    assert delivery["event_id"].startswith("evt_")
    assert delivery["tries"] == []
    failed = client.get(f"/v1/webhooks/{hook['id']}/deliveries?status=failed", headers=auth)
    assert failed.json()["data"] == []
    again = client.post(
        f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver", headers=auth
    )
    assert again.status_code == 200, again.text
    assert again.json()["event_id"] == delivery["event_id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    missing = client.post(f"/v1/webhooks/{hook['id']}/deliveries/{unknown}/redeliver", headers=auth)
    assert missing.status_code == 404


def test_per_request_webhooks_need_the_request_signing_key(
    client: TestClient, auth: Headers, session_id: str, agent_id: str, engine: Engine
) -> None:
    assert client.get("/v1/webhooks/request-secret", headers=auth).status_code == 404
    message = {"content": "hi", "webhook_url": URL}
    refused = client.post(f"/v1/sessions/{session_id}/messages", json=message, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["param"] == "webhook_url"
    assert "request-secret" in refused.json()["error"]["message"]
    assert client.get(f"/v1/sessions/{session_id}/runs", headers=auth).json()["data"] == []

    made = client.post("/v1/webhooks/request-secret", headers=auth)
    assert made.status_code == 201, made.text
    assert made.json()["secret"].startswith("whsec_")
    shown = client.get("/v1/webhooks/request-secret", headers=auth).json()
    assert "secret" not in shown
    assert shown["created_at"] == made.json()["created_at"]
    again = client.post("/v1/webhooks/request-secret", headers=auth).json()
    assert again["secret"] != made.json()["secret"]  # rotated

    run = client.post(f"/v1/sessions/{session_id}/messages", json=message, headers=auth)
    assert run.status_code == 202, run.text
    assert run.json()["webhook_url"] == URL
    support.start(engine, run.json()["id"])
    support.finish(engine, run.json()["id"], output="done")
    listed = client.get(
        "/v1/webhooks/request-deliveries", params={"run_id": run.json()["id"]}, headers=auth
    ).json()
    (delivery,) = listed["data"]
    assert (delivery["webhook_id"], delivery["url"]) == (None, URL)
    assert delivery["event_type"] == "run.succeeded"
    assert delivery["payload"]["data"]["output"] == "done"
    again = client.post(f"/v1/webhooks/request-deliveries/{delivery['id']}/redeliver", headers=auth)
    assert again.status_code == 200, again.text
    assert again.json()["event_id"] == delivery["event_id"]
    other = client.get(
        "/v1/webhooks/request-deliveries", params={"batch_id": str(uuid.uuid4())}, headers=auth
    )
    assert other.json()["data"] == []
    private = {"content": "hi", "webhook_url": "http://10.0.0.5/in", "queue": True}
    bad = client.post(f"/v1/sessions/{session_id}/messages", json=private, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "webhook_url"
    batch = client.post(
        "/v1/batches",
        json={"agent_id": agent_id, "items": [{"input": "q"}], "webhook_url": URL},
        headers=auth,
    )
    assert batch.status_code == 201, batch.text
    assert batch.json()["webhook_url"] == URL
    upload = client.post(
        "/v1/batches",
        params={"agent_id": agent_id, "webhook_url": "http://127.0.0.1:9/in"},
        content=b'{"input": "q"}\n',
        headers={**auth, "content-type": "application/x-ndjson"},
    )
    assert upload.status_code == 422
    assert upload.json()["error"]["param"] == "webhook_url"


def test_batch_and_schedule_events_can_be_subscribed(client: TestClient, auth: Headers) -> None:
    events = ["batch.completed", "batch.cancelled", "schedule.fired"]
    created = client.post("/v1/webhooks", json={"url": URL, "events": events}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["events"] == events
