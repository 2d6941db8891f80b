"""Shapes shared by every entity: the base of request models, list envelopes and opaque
cursors."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

T = TypeVar("T")

Metadata = dict[str, Any]


MAX_JSON_DEPTH = 64
"""Deepest nesting of lists and objects a request value may have (422 deeper): metadata is
filterable data, not a document store, and a bounded depth keeps every walker of it cheap."""


def _unstorable(value: Any) -> str | None:
    """What in `value` Postgres cannot store (None: nothing): a NUL character in text or JSONB,
    NaN or an infinity in JSONB, or nesting past MAX_JSON_DEPTH. Walks JSON-like dicts (keys
    too) and lists with an explicit stack, so no depth raises RecursionError; nested models
    check themselves."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "NUL (U+0000) characters"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "NaN or infinite numbers"
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                return f"lists or objects nested more than {MAX_JSON_DEPTH} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in reversed(children))
    return None


def storable(value: T) -> T:
    """`value`, unless Postgres cannot store it: its insert or query would fail (a 500), so it
    is refused at the edge as a 422 instead."""
    found = _unstorable(value)
    if found is not None:
        raise ValueError(f"must not contain {found}")
    return value


Storable = AfterValidator(storable)
"""For a path, query or header parameter outside an `Inbound` model."""


class Inbound(BaseModel):
    """Base of every request body and query model: unknown fields are refused, and so is a
    value Postgres cannot store (`storable`) anywhere in a field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def postgres_can_store(cls, value: Any) -> Any:
        """422 naming the field that holds a NUL character, a NaN or an infinity."""
        return storable(value)


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
