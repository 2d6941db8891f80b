"""API key format: `am_<key id>_<secret>`. Only a hash of the secret is ever stored.

The secret carries 256 random bits, so a single SHA-256 is the right hash: a slow password
hash protects low-entropy secrets and would only add latency to every request here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "am"
_KEY_RE = re.compile(r"^am_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ParsedKey:
    """A syntactically valid key split into its public id and its secret."""

    key_id: str
    secret: str


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `token` is shown to the user once, `secret_hash` is stored."""

    key_id: str
    token: str
    secret_hash: bytes


def hash_secret(secret: str) -> bytes:
    """SHA-256 of the secret part of a key."""
    return hashlib.sha256(secret.encode()).digest()


def generate() -> NewKey:
    """Make a new random key."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"{PREFIX}_{key_id}_{secret}", hash_secret(secret))


def parse(token: str) -> ParsedKey | None:
    """Split a presented key, or None when it is not shaped like one of ours."""
    match = _KEY_RE.match(token)
    if match is None:
        return None
    return ParsedKey(match.group(1), match.group(2))


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    """Compare in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
