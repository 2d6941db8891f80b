"""Long-term memory shapes: MemoryCreate, MemoryQuery (search and list parameters),
MemoryUpdate, MemoryPublic, MemoryWritten, MemoryHit, and the list cursor."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from api.schemas.common import Inbound, Metadata, invalid, storable
from memory.filters import Kind, MemoryFilter
from memory.records import MemoryRecord, NewMemory, SearchHit

MAX_SEARCH_K = 50
"""Most hits one search over REST returns."""

UserId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class MemoryCreate(Inbound):
    """Body of POST /v1/agents/{id}/memories. Empty content is 422 and content over
    AGENTMILL_MEMORY_MAX_CONTENT_CHARS is 413 (the memory layer's checks)."""

    content: str = Field(description="The text to remember.")
    user_id: UserId | None = Field(
        default=None, description="The end user it is about (default: the session's user)."
    )
    session_id: uuid.UUID | None = Field(
        default=None, description="A session of this agent it came from."
    )
    kind: Kind = Field(default="fact", description="fact, episodic (a turn) or summary.")
    importance: float = Field(default=0.5, ge=0, le=1, description="0..1; weighs in ranking.")
    metadata: Metadata = Field(default_factory=dict, description="Filterable by containment.")

    def new_memory(self, agent_id: uuid.UUID, user_id: str | None) -> NewMemory:
        """The memory layer's form, for `agent_id` and the resolved end user."""
        return NewMemory(
            agent_id=agent_id,
            content=self.content,
            user_id=user_id,
            session_id=self.session_id,
            kind=self.kind,
            importance=self.importance,
            metadata=self.metadata,
        )


class MemoryUpdate(Inbound):
    """Body of PATCH /v1/memories/{id}: the fields to change (at least one). New content is
    validated like a write's (empty: 422, too long: 413) and embedded again; content that a
    near-duplicate in the memory's scope already holds is 409. Metadata is replaced whole."""

    content: str | None = Field(default=None, description="The new text.")
    importance: float | None = Field(default=None, ge=0, le=1, description="0..1.")
    metadata: Metadata | None = Field(default=None, description="Replaces the metadata.")

    @model_validator(mode="after")
    def changes_something(self) -> MemoryUpdate:
        """Refuse an empty patch, and nulls (a memory has no null content or importance)."""
        given = self.model_fields_set
        if not given:
            raise ValueError("give at least one of content, importance, metadata")
        for name in sorted(given):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class MemoryQuery(Inbound):
    """Query of GET /v1/agents/{id}/memories: with `query` a search (`k` hits, best first),
    without it a list (newest first, `limit` per page). The filters apply to both; any other
    parameter is refused (422 naming it)."""

    query: str | None = Field(default=None, description="Search text; absent: list instead.")
    k: int | None = Field(default=None, ge=1, le=MAX_SEARCH_K, description="Hits (search; 10).")
    limit: int | None = Field(default=None, ge=1, le=100, description="Page size (list; 50).")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")
    user_id: UserId | None = Field(default=None, description="Only this end user's memories.")
    session_id: uuid.UUID | None = Field(default=None, description="Only this session's.")
    kind: list[Kind] | None = Field(default=None, description="Only these kinds (repeatable).")
    created_after: AwareDatetime | None = Field(default=None, description="created_at >= this.")
    created_before: AwareDatetime | None = Field(default=None, description="created_at < this.")
    metadata: str | None = Field(
        default=None, description='JSON object the metadata must contain, e.g. {"topic":"x"}.'
    )

    @field_validator("metadata")
    @classmethod
    def metadata_is_an_object(cls, value: str | None) -> str | None:
        """Refuse anything but a JSON object."""
        if value is not None:
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):  # the parser recurses per nesting level
                raise ValueError("must be a JSON object") from None
            if not isinstance(parsed, dict):
                raise ValueError("must be a JSON object")
            storable(parsed)  # "\u0000" decodes to a NUL, NaN parses
        return value

    def check_mode(self) -> None:
        """422 for parameters of the other mode: `k` only searches, `limit`/`cursor` only list."""
        if self.query is None and self.k is not None:
            raise invalid("k", "k applies to searches: pass query", where="query")
        if self.query is not None:
            for name in ("limit", "cursor"):
                if getattr(self, name) is not None:
                    message = f"{name} applies to listing; a search returns k hits"
                    raise invalid(name, message, where="query")

    def memory_filter(self, agent_id: uuid.UUID) -> MemoryFilter:
        """The filter of this query, for one agent."""
        return MemoryFilter(
            agent_id=agent_id,
            user_id=self.user_id,
            session_id=self.session_id,
            kinds=tuple(self.kind) if self.kind else None,
            created_after=self.created_after,
            created_before=self.created_before,
            metadata=json.loads(self.metadata) if self.metadata is not None else {},
        )


class MemoryPublic(BaseModel):
    """A memory as the API returns it (never its vectors)."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: str | None
    session_id: uuid.UUID | None
    kind: str
    content: str
    importance: float
    metadata: Metadata
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None
    access_count: int
    source_run_id: uuid.UUID | None
    source_message_id: uuid.UUID | None

    @classmethod
    def of(cls, record: MemoryRecord) -> MemoryPublic:
        """From the memory layer's record."""
        return cls(**_fields(record))


class MemoryWritten(MemoryPublic):
    """Answer of POST: the stored memory, and whether it merged into a near-duplicate."""

    deduplicated: bool = Field(description="True (status 200): an existing memory was updated.")

    @classmethod
    def written(cls, record: MemoryRecord, deduplicated: bool) -> MemoryWritten:
        """From the record now holding the write."""
        return cls(**_fields(record), deduplicated=deduplicated)


def _fields(record: MemoryRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in MemoryPublic.model_fields}


class MemoryHit(BaseModel):
    """One search result: higher scores are better, comparable within one search only."""

    score: float
    memory: MemoryPublic

    @classmethod
    def of(cls, hit: SearchHit) -> MemoryHit:
        """From the memory layer's hit."""
        return cls(score=hit.score, memory=MemoryPublic.of(hit.memory))
