"""`agentmill.verify_webhook` against the server's signer and the Standard Webhooks reference
library, and `client.webhooks` against the real API."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import agentmill
import pytest
from standardwebhooks import Webhook as Reference

from agents.webhooks.signing import headers, new_secret


def test_a_delivery_signed_by_the_server_verifies_and_a_changed_one_does_not() -> None:
    secret = new_secret()
    body = '{"type":"run.succeeded","data":{"output":"hi"}}'
    now = int(time.time())
    sent = headers(secret, "evt_1", now, body)
    assert agentmill.verify_webhook(body.encode(), sent, secret)["type"] == "run.succeeded"
    assert Reference(secret).verify(body, sent)["data"]["output"] == "hi"
    with pytest.raises(agentmill.WebhookVerificationError, match="no signature"):
        agentmill.verify_webhook(body.replace("hi", "ho"), sent, secret)
    with pytest.raises(agentmill.WebhookVerificationError, match="no signature"):
        agentmill.verify_webhook(body, sent, new_secret())
    with pytest.raises(agentmill.WebhookVerificationError, match="too old"):
        agentmill.verify_webhook(body, sent, secret, now=now + 301)
    with pytest.raises(agentmill.WebhookVerificationError, match="missing"):
        agentmill.verify_webhook(body, {"webhook-id": "evt_1"}, secret)


def test_the_sdk_accepts_what_the_reference_library_signs() -> None:
    secret = new_secret()
    body = '{"type":"run.failed"}'
    at = datetime.now(UTC)
    signature = Reference(secret).sign("evt_2", at, body)
    sent = {"Webhook-Id": "evt_2", "Webhook-Timestamp": str(int(at.timestamp())),
            "Webhook-Signature": f"v2,xyz {signature}"}  # fmt: skip
    assert agentmill.verify_webhook(body, sent, secret) == {"type": "run.failed"}


def test_webhooks_through_the_sdk(api_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=api_url) as am:
        hook = am.webhooks.create("https://hooks.example.com/in", ["run.succeeded"])
        assert hook.secret is not None
        assert hook.secret.startswith("whsec_")
        assert am.webhooks.get(hook.id).secret is None
        changed = am.webhooks.update(hook.id, enabled=False, description="paused")
        assert (changed.enabled, changed.description) == (False, "paused")
        assert [h.id for h in am.webhooks.list()] == [hook.id]
        assert am.webhooks.deliveries(hook.id).data == []
        with pytest.raises(agentmill.UnprocessableEntityError):
            am.webhooks.create("http://169.254.169.254/", ["run.failed"])
        am.webhooks.delete(hook.id)
        with pytest.raises(agentmill.NotFoundError):
            am.webhooks.get(hook.id)


def test_per_request_webhooks_through_the_sdk(api_url: str, api_key: str) -> None:
    with agentmill.Client(api_key, base_url=api_url) as am:
        agent = am.agents.create("hooked")
        assert am.webhooks.request_secret() is None
        with pytest.raises(agentmill.UnprocessableEntityError):  # no key to sign with yet
            am.batches.create(agent.id, ["q"], webhook_url="https://hooks.example.com/batch")
        key = am.webhooks.rotate_request_secret()
        assert key.secret is not None
        assert key.secret.startswith("whsec_")
        shown = am.webhooks.request_secret()
        assert shown is not None
        assert (shown.secret, shown.created_at) == (None, key.created_at)
        batch = am.batches.create(agent.id, ["q"], webhook_url="https://hooks.example.com/batch")
        assert batch.webhook_url == "https://hooks.example.com/batch"
        assert am.webhooks.request_deliveries(batch_id=batch.id).data == []  # not ended yet
        with pytest.raises(agentmill.NotFoundError):
            am.webhooks.redeliver_request("00000000-0000-0000-0000-000000000000")
