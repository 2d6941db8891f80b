"""Administrative commands: `agentmill migrate`, `agentmill keys ...` and
`agentmill memory reembed`."""

from __future__ import annotations

import sys

from core.config import Settings
from core.connect import open_database
from core.db import transaction
from core.errors import UserError
from core.tenants import create_key as store_key
from core.tenants import ensure_tenant
from core.tenants import list_keys as stored_keys
from core.tenants import revoke_key as revoke_stored


def run_migrate(settings: Settings) -> int:
    """Migrate the configured database to the newest revision."""
    from core.migrate import current_revision

    with open_database(settings, upgrade=True) as engine:
        print(f"database at revision {current_revision(engine)}", file=sys.stderr)
    return 0


def create_key(settings: Settings, tenant: str, name: str | None) -> int:
    """Print a new key for `tenant` (created if new) on stdout, and nothing else there."""
    with open_database(settings) as engine, transaction(engine) as session:
        tenant_id, created = ensure_tenant(session, tenant)
        token = store_key(session, tenant_id, name)
    if created:
        print(f"created tenant {tenant!r}", file=sys.stderr)
    print(f"new API key for tenant {tenant!r} (shown once):", file=sys.stderr)
    print(token, flush=True)
    return 0


def revoke_key(settings: Settings, key: str) -> int:
    """Revoke a key by id or token."""
    with open_database(settings) as engine, transaction(engine) as session:
        key_id = revoke_stored(session, key)
    print(f"revoked key {key_id}", file=sys.stderr)
    return 0


def list_keys(settings: Settings, tenant: str | None) -> int:
    """Print one line per key: id, tenant, state, created, label."""
    with open_database(settings) as engine, transaction(engine) as session:
        rows = stored_keys(session, tenant)
    for row in rows:
        state = "revoked" if row.revoked_at is not None else "active"
        created = row.created_at.strftime("%Y-%m-%d %H:%M")
        print(f"{row.key_id}  {row.tenant_name:<20} {state:<8} {created}  {row.name or ''}")
    return 0


def reembed(settings: Settings, batch: int) -> int:
    """Re-embed every memory with the configured model (memory.reembed), printing progress."""
    from inference.embedder import configured_embedder
    from memory.reembed import reembed as reembed_all

    if batch < 1:
        raise UserError("--batch-size must be at least 1")
    embedder = configured_embedder(settings)
    print(f"re-embedding memories with {embedder.identity}", file=sys.stderr)

    def progress(stage: str, done: int, total: int) -> None:
        print(f"  {stage} vectors: {done}/{total}", file=sys.stderr, flush=True)

    with open_database(settings) as engine:
        result = reembed_all(engine, embedder, settings, batch=batch, progress=progress)
    before, after = result.before, result.after
    print(
        f"re-embedded {result.memories} memories: {before.model} ({before.dimension} dims) "
        f"-> {after.model} ({after.dimension} dims); {result.scope_indexes} scope indexes built",
        file=sys.stderr,
    )
    return 0
