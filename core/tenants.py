"""Tenants and API keys: the SQL for both, in one place."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core import keys
from core.errors import AuthenticationError, NotFound, UserError
from core.models import ApiKey, Tenant

KEY_REVOKED_CHANNEL = "agentmill_key_revoked"
"""`revoke_key` notifies this channel (payload: the key id) in its transaction, so API
processes drop the keys they cache the moment the revocation commits (api.events_hub)."""

_TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant an API key belongs to."""

    tenant_id: uuid.UUID
    tenant_name: str
    key_id: str


@dataclass(frozen=True)
class KeyInfo:
    """An API key as listings show it: never the secret."""

    key_id: str
    tenant_name: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


def validate_tenant_name(name: str) -> str:
    """Return the name, or raise `UserError` saying what a valid one looks like."""
    if not _TENANT_NAME.match(name):
        raise UserError(
            "tenant name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit",
            param="tenant",
        )
    return name


def count_tenants(session: Session) -> int:
    """How many tenants exist."""
    return session.scalar(select(func.count()).select_from(Tenant)) or 0


def ensure_tenant(session: Session, name: str) -> tuple[uuid.UUID, bool]:
    """The id of tenant `name`, creating it if needed; the flag says whether it was created."""
    validate_tenant_name(name)
    inserted = session.scalar(
        insert(Tenant)
        .values(id=uuid.uuid4(), name=name)
        .on_conflict_do_nothing(index_elements=[Tenant.name])
        .returning(Tenant.id)
    )
    if inserted is not None:
        return inserted, True
    existing = session.scalar(select(Tenant.id).where(Tenant.name == name))
    assert existing is not None
    return existing, False


def create_key(session: Session, tenant_id: uuid.UUID, name: str | None = None) -> str:
    """Store a new key for the tenant and return its token: the only time it is visible."""
    new = keys.generate()
    session.add(
        ApiKey(tenant_id=tenant_id, key_id=new.key_id, secret_hash=new.secret_hash, name=name)
    )
    session.flush()
    return new.token


def revoke_key(session: Session, key: str) -> str:
    """Revoke a key given its id or its whole token; return the key id. Idempotent. API
    processes hear of it on KEY_REVOKED_CHANNEL when the transaction commits."""
    parsed = keys.parse(key)
    key_id = parsed.key_id if parsed is not None else key
    revoked = session.scalar(
        update(ApiKey)
        .where(ApiKey.key_id == key_id)
        .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
        .returning(ApiKey.key_id)
    )
    if revoked is None:
        raise NotFound("api key", key_id)
    session.execute(select(func.pg_notify(KEY_REVOKED_CHANNEL, str(revoked))))
    return str(revoked)


def list_keys(session: Session, tenant_name: str | None = None) -> list[KeyInfo]:
    """Every key, oldest first, optionally of one tenant."""
    query = (
        select(ApiKey.key_id, Tenant.name, ApiKey.name, ApiKey.created_at, ApiKey.revoked_at)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .order_by(ApiKey.created_at, ApiKey.key_id)
    )
    if tenant_name is not None:
        query = query.where(Tenant.name == tenant_name)
    return [KeyInfo(*row) for row in session.execute(query)]


def parse_presented(token: str | None) -> keys.ParsedKey:
    """The presented key split, or `AuthenticationError` when it is missing or not shaped like
    a key (both decided without the database)."""
    if not token:
        raise AuthenticationError("missing API key: send the header 'Authorization: Bearer <key>'")
    parsed = keys.parse(token)
    if parsed is None:
        raise AuthenticationError("malformed API key")
    return parsed


def authenticate(session: Session, token: str | None) -> Principal:
    """Resolve a presented key to its tenant, or raise `AuthenticationError`."""
    parsed = parse_presented(token)
    row = session.execute(
        select(ApiKey.secret_hash, ApiKey.revoked_at, Tenant.id, Tenant.name)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_id == parsed.key_id)
    ).one_or_none()
    # Hash and compare even for an unknown id, so timing does not tell which ids exist.
    stored = row.secret_hash if row is not None else b"\0" * 32
    matches = keys.secret_matches(parsed.secret, stored)
    if row is None or not matches:
        raise AuthenticationError("invalid API key")
    if row.revoked_at is not None:
        raise AuthenticationError("API key has been revoked")
    return Principal(tenant_id=row.id, tenant_name=row.name, key_id=parsed.key_id)
