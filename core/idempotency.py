"""Idempotency keys of the POSTs that create something (agents, sessions, memories, batches,
webhooks, MCP servers, approvals): the first request with a key is done and its answer kept;
a retry with the same key and the same request gets that answer again instead of a second
resource; the same key with another request is a Conflict.

A key is claimed (a row without an answer) in its own transaction before the work, and the
answer is stored after it: a concurrent retry meanwhile gets a Conflict ("in progress"); a
request that failed releases its key, so a retry does the work. Keys are kept for
KEPT_S (24 h), per tenant. Only if the process dies between the work's commit and storing its
answer can a retry do the work again; the key then counts as released after CLAIM_EXPIRES_S.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, delete, func, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from core.db import transaction
from core.errors import Conflict
from core.models import Base

KEPT_S = 86_400
CLAIM_EXPIRES_S = 300


class IdempotencyKeyRow(Base):
    """One key of a tenant, with the answer of the request that first used it."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class KeyReused(Conflict):
    """The key came back with another request, or while its first request is running."""


@dataclass(frozen=True)
class Replay:
    """The kept answer of the key's first request."""

    status_code: int
    body: Any


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """What identifies a request: the same bytes to the same route."""
    return hashlib.sha256(f"{method} {path}\n".encode() + body).digest()


def claim(engine: Engine, tenant_id: uuid.UUID, key: str, print_: bytes) -> Replay | None:
    """Claim the key for this request (None: do the work), or the first request's answer."""
    with transaction(engine) as session:
        session.execute(  # an expired claim or an old key no longer holds
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.tenant_id == tenant_id,
                IdempotencyKeyRow.key == key,
                text(
                    "(status_code IS NULL AND created_at < now() - make_interval(secs => :claim))"
                    " OR created_at < now() - make_interval(secs => :kept)"
                ).bindparams(claim=CLAIM_EXPIRES_S, kept=KEPT_S),
            )
        )
        won = session.execute(
            insert(IdempotencyKeyRow)
            .values(tenant_id=tenant_id, key=key, fingerprint=print_)
            .on_conflict_do_nothing()
            .returning(IdempotencyKeyRow.key)
        ).first()
        if won is not None:
            return None
        row = session.get(IdempotencyKeyRow, (tenant_id, key))
    if row is None or row.fingerprint != print_:
        raise KeyReused(
            "this Idempotency-Key was used for a different request; use a new key",
            param="Idempotency-Key",
        )
    if row.status_code is None:
        raise KeyReused(
            "a request with this Idempotency-Key is still being handled; retry shortly",
            param="Idempotency-Key",
        )
    return Replay(row.status_code, row.response)


def answer(engine: Engine, tenant_id: uuid.UUID, key: str, status_code: int, body: Any) -> None:
    """Keep the answer of the key's request."""
    with transaction(engine) as session:
        row = session.get(IdempotencyKeyRow, (tenant_id, key))
        if row is not None:
            row.status_code, row.response = status_code, body


def release(engine: Engine, tenant_id: uuid.UUID, key: str) -> None:
    """Forget a claim whose request failed: a retry does the work."""
    with transaction(engine) as session:
        session.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.tenant_id == tenant_id,
                IdempotencyKeyRow.key == key,
                IdempotencyKeyRow.status_code.is_(None),
            )
        )
