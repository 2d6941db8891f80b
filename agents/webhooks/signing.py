"""Signing deliveries the Standard Webhooks way (standardwebhooks.com), so receivers can use an
existing verifier: `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`,
`v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key being the base64 part of
the endpoint's `whsec_...` secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, event_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value of one delivery attempt."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{event_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def headers(secret: str, event_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, event_id, timestamp, body),
        "user-agent": "agentmill-webhooks",
    }
