"""Receiving agentmill's webhooks: `verify_webhook(payload, headers, secret)` checks a delivery
the Standard Webhooks way (the signature over `{webhook-id}.{webhook-timestamp}.{body}` with the
endpoint's `whsec_` secret, and a timestamp within five minutes) and returns the event.

    from agentmill import WebhookVerificationError, verify_webhook

    event = verify_webhook(request.body, request.headers, secret)   # raises if forged
    if event["type"] == "run.succeeded": ...

Receivers dedupe by the `webhook-id` header: a delivery may come more than once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from agentmill.errors import AgentmillError

TOLERANCE_S = 300


class WebhookVerificationError(AgentmillError):
    """A delivery that is not from agentmill, was changed, or is too old or too new."""


def verify_webhook(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """The event of a genuine delivery; raises WebhookVerificationError for any other."""
    lowered = {key.lower(): value for key, value in headers.items()}
    event_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (event_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        sent = int(stamp)
    except ValueError:
        raise WebhookVerificationError("the webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - sent) > TOLERANCE_S:
        raise WebhookVerificationError("the delivery is too old or too new (replayed?)")
    body = payload.decode() if isinstance(payload, bytes) else payload
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise WebhookVerificationError("the secret is not a whsec_ secret") from None
    expected = hmac.new(key, f"{event_id}.{sent}.{body}".encode(), hashlib.sha256).digest()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value)
        except ValueError:
            continue
        if hmac.compare_digest(expected, given):
            parsed: dict[str, Any] = json.loads(body)
            return parsed
    raise WebhookVerificationError("no signature matches")
