"""Shapes shared by every entity: the base of request models, list envelopes and the one
keyset pagination scheme with its opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar

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


# Every list pages by keyset: a page is the rows after the sort key of the last row the
# previous page showed, and `next_cursor` is that key, opaque (base64 of a JSON list). Lists
# ordered by time use (created_at, id); lists ordered by a per-parent counter (a session's
# message seq, a block's version) use that number. Nothing is skipped by offset, so a row
# inserted or deleted meanwhile never shifts a page.

TimeKey = tuple[datetime, uuid.UUID]
CursorKey = TimeKey | int
R = TypeVar("R")


def encode_cursor(key: CursorKey) -> str:
    """The opaque cursor for a page after `key`."""
    items = [key[0].isoformat(), str(key[1])] if isinstance(key, tuple) else [key]
    return base64.urlsafe_b64encode(json.dumps(items).encode()).decode().rstrip("=")


def _items(cursor: str) -> list[Any]:
    try:
        items = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise _not_ours() from None
    if not isinstance(items, list):
        raise _not_ours()
    return items


def _not_ours() -> Exception:
    return invalid("cursor", "not a cursor this API returned", where="query")


def decode_cursor(cursor: str) -> TimeKey:
    """The (created_at, id) key a time-ordered list's cursor holds; 422 (param `cursor`)
    for anything `encode_cursor` did not produce for such a list."""
    items = _items(cursor)
    try:
        created_at, ident = items
        at = datetime.fromisoformat(created_at)
        if at.tzinfo is None:
            raise ValueError(cursor)
        return at, uuid.UUID(ident)
    except (ValueError, TypeError):
        raise _not_ours() from None


def decode_position(cursor: str, upto: int) -> int:
    """The counter a position list's cursor holds (a seq or a version, at most `upto`, the
    column's largest); 422 for anything else."""
    items = _items(cursor)
    if len(items) != 1 or type(items[0]) is not int or not 0 <= items[0] <= upto:
        raise _not_ours()
    position: int = items[0]
    return position


def keyset_page(
    rows: Sequence[R], limit: int, key: Callable[[R], CursorKey], public: Callable[[R], T]
) -> Page[T]:
    """The page of `rows`, fetched `limit + 1` at a time: the extra row, when it came, only
    says that there is a next page, which starts after the last row shown."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    next_cursor = encode_cursor(key(shown[-1])) if more else None
    return Page(data=[public(row) for row in shown], next_cursor=next_cursor)


class Timed(Protocol):
    """A record of a time-ordered list."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> uuid.UUID: ...


def by_time(row: Timed) -> TimeKey:
    """The key of a row ordered by (created_at, id)."""
    return row.created_at, row.id


Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
