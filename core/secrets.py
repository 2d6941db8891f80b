"""Encrypting the secrets agentmill stores (an MCP server's headers), so a database dump or a
backup does not hold them in the clear.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): a sealed value carries its own
authentication, so a wrong key or a changed ciphertext is refused, never decrypted into noise.
The key is AGENTMILL_SECRET_KEY (any string; its SHA-256 is the Fernet key), or on a
development machine a random one kept in `home/secret-key`, created on first use with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from core.config import Settings
from core.errors import ConfigError


class SecretsUnreadable(Exception):
    """A sealed value could not be opened: the key changed, or the value was altered."""


class SecretBox:
    """Seals and opens JSON values with the deployment's key."""

    def __init__(self, key: str) -> None:
        digest = hashlib.sha256(key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box of this deployment; raises ConfigError in production without a key."""
        if settings.secret_key is not None:
            return cls(settings.secret_key.get_secret_value())
        if settings.environment == "production":
            raise ConfigError(
                "storing secrets needs AGENTMILL_SECRET_KEY in production (the same value for "
                "every API and worker process)"
            )
        return cls(_key_file(settings))

    def seal(self, value: Any) -> bytes:
        """The encrypted form of a JSON value."""
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def open(self, sealed: bytes) -> Any:
        """The JSON value `seal` was given; raises SecretsUnreadable."""
        try:
            return json.loads(self._fernet.decrypt(bytes(sealed)))
        except InvalidToken:
            raise SecretsUnreadable(
                "a stored secret cannot be decrypted: AGENTMILL_SECRET_KEY differs from the "
                "key it was stored with"
            ) from None


def _key_file(settings: Settings) -> str:
    path = settings.secret_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:  # a hard link never replaces: of two processes starting at once, one key wins
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path} is empty; delete it or set AGENTMILL_SECRET_KEY")
    return key
