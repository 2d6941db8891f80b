"""Shapes shared by every entity: list envelopes and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

T = TypeVar("T")

Metadata = dict[str, Any]


class Page(BaseModel, Generic[T]):
    """One page of a list: pass `next_cursor` back to get the next one (null: no more)."""

    data: list[T]
    next_cursor: str | None = None


def invalid(param: str, message: str, *, where: str = "body", value: Any = None) -> Exception:
    """A 422 naming `param`, for checks pydantic cannot make alone (they need settings or
    state); it goes through the same handler and envelope as pydantic's own errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where, param), "msg": message, "input": value}]
    )


def encode_cursor(created_at: datetime, ident: uuid.UUID) -> str:
    """An opaque cursor for keyset pagination on (created_at, id)."""
    raw = json.dumps([created_at.isoformat(), str(ident)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Inverse of `encode_cursor`; 422 (param `cursor`) for anything it did not produce."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, ident = json.loads(raw)
        return datetime.fromisoformat(created_at), uuid.UUID(ident)
    except (binascii.Error, ValueError, TypeError):
        raise invalid("cursor", "not a cursor this API returned", where="query") from None


Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
