"""Which memories a search or listing may see. Parsed once from the caller's mapping (unknown
fields are refused), then turned into SQL conditions by the store."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, get_args

from memory.errors import InvalidMemoryInput, UnknownFilterField

Kind = Literal["episodic", "fact", "summary"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class MemoryFilter:
    """Conditions every returned memory meets; None means "any". The tenant is not a filter:
    the store always applies it."""

    agent_id: uuid.UUID | None = None
    """Only this agent's memories."""
    user_id: str | None = None
    """Only memories about this end user."""
    no_user: bool = False
    """Only memories about no end user (user_id NULL): what a session without a user may
    see. None of `user_id` means "any user", so this is how to say "nobody"."""
    session_id: uuid.UUID | None = None
    """Only memories written in this session."""
    kinds: tuple[Kind, ...] | None = None
    """Only these kinds (episodic, fact, summary)."""
    created_after: datetime | None = None
    """created_at >= this instant."""
    created_before: datetime | None = None
    """created_at < this instant."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Metadata containment: every key/value here must be present (jsonb `@>`)."""

    def __post_init__(self) -> None:
        if self.no_user and self.user_id is not None:
            raise InvalidMemoryInput("no_user excludes user_id", param="no_user")
        for name, value in (
            ("created_after", self.created_after),
            ("created_before", self.created_before),
        ):
            if value is not None and value.tzinfo is None:
                raise InvalidMemoryInput(f"{name} needs a timezone", param=name)
        if self.kinds is not None:
            for kind in self.kinds:
                if kind not in KINDS:
                    raise InvalidMemoryInput(
                        f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}", param="kind"
                    )

    @classmethod
    def seen_by(cls, agent_id: uuid.UUID, user_id: str | None) -> MemoryFilter:
        """What a run (or its tools) may recall: the agent's memories of this end user, and in
        a session without one only the memories of nobody, never every user's."""
        return cls(agent_id=agent_id, user_id=user_id, no_user=user_id is None)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> MemoryFilter:
        """Build a filter from loosely typed input (query parameters, tool arguments).

        `kind` may be one kind or a list; ids may be strings; times ISO 8601; `no_user` a bool
        or "true"/"false". A field that is not one of this class's fields raises
        `UnknownFilterField`."""
        allowed = (*(f.name for f in fields(cls)), "kind")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in allowed:
                raise UnknownFilterField(name, allowed)
            if value is None:
                continue
            if name in ("agent_id", "session_id"):
                values[name] = _uuid(name, value)
            elif name in ("kind", "kinds"):
                values["kinds"] = (value,) if isinstance(value, str) else tuple(value)
            elif name in ("created_after", "created_before"):
                values[name] = _time(name, value)
            elif name == "no_user":
                values[name] = _flag(name, value)
            elif name == "metadata":
                if not isinstance(value, Mapping):
                    raise InvalidMemoryInput("metadata filter must be an object", param=name)
                values[name] = dict(value)
            else:
                values[name] = str(value)
        return cls(**values)


def _uuid(name: str, value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidMemoryInput(f"{name} must be a UUID", param=name) from None


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidMemoryInput(f"{name} must be true or false", param=name)


def _time(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidMemoryInput(f"{name} must be an ISO 8601 time", param=name) from None
