"""First start of an empty installation: a `default` tenant and one key, shown once."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine

from core.db import transaction
from core.tenants import count_tenants, create_key, ensure_tenant

DEFAULT_TENANT = "default"


def bootstrap(engine: Engine, key_file: Path) -> str | None:
    """Create the default tenant and a key when no tenant exists; return the key, else None."""
    with transaction(engine) as session:
        if count_tenants(session) > 0:
            return None
        tenant_id, _ = ensure_tenant(session, DEFAULT_TENANT)
        token = create_key(session, tenant_id, name="bootstrap")
    write_secret(key_file, token + "\n")
    return token


def write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from creation, not chmod after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
