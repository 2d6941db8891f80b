"""Plain data the memory layer takes and returns (dataclasses inside; api/ adds pydantic)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memory.filters import Kind


@dataclass(frozen=True)
class NewMemory:
    """A memory to store."""

    agent_id: uuid.UUID
    """The agent whose memory this is (no foreign key until the agents table exists)."""
    content: str
    """The text itself; what search returns."""
    user_id: str | None = None
    """The end user it is about, if any; erase_user removes everything of one user."""
    session_id: uuid.UUID | None = None
    """The session it came from; episodic memories of a session get their neighbours as context."""
    kind: Kind = "episodic"
    """episodic (a turn), fact (extracted) or summary."""
    importance: float = 0.5
    """0..1; weighs in the final score (see docs/memory.md)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Free JSON object; filterable by containment."""
    created_at: datetime | None = None
    """When it happened (timezone-aware); default now. Imports set it to the original time."""
    context: str | None = None
    """Retrieval-only text around the memory; None lets the store build it from neighbours."""
    embedding: Sequence[float] | None = None
    """A precomputed embedding of `content`; must have the store's dimension."""
    source_run_id: uuid.UUID | None = None
    """Provenance: the run that wrote it."""
    source_message_id: uuid.UUID | None = None
    """Provenance: the message it came from."""


@dataclass(frozen=True)
class MemoryRecord:
    """A stored memory as callers see it (never its vectors)."""

    id: uuid.UUID
    """Primary key."""
    agent_id: uuid.UUID
    """Owning agent."""
    user_id: str | None
    """End user it is about."""
    session_id: uuid.UUID | None
    """Session it came from."""
    kind: str
    """episodic, fact or summary."""
    content: str
    """The text."""
    importance: float
    """0..1."""
    metadata: dict[str, Any]
    """Free JSON object."""
    created_at: datetime
    """When it happened."""
    updated_at: datetime
    """Last write (a deduplicated write updates it)."""
    last_accessed_at: datetime | None
    """Last time a search returned it."""
    access_count: int
    """How many searches returned it."""
    source_run_id: uuid.UUID | None
    """Provenance: run."""
    source_message_id: uuid.UUID | None
    """Provenance: message."""


@dataclass(frozen=True)
class WriteResult:
    """What happened to one `NewMemory`."""

    id: uuid.UUID
    """The row that now holds it."""
    deduplicated: bool
    """True when it updated a near-duplicate instead of adding a row."""


@dataclass(frozen=True)
class SearchHit:
    """One search result with the signals that ranked it."""

    memory: MemoryRecord
    """The memory."""
    score: float
    """Final score (higher is better); comparable within one search only."""
    vector_rank: int | None
    """1-based rank among the vector candidates (content embedding), None if not one."""
    context_rank: int | None
    """1-based rank among the context-embedding candidates, None if not one."""
    text_rank: int | None
    """1-based rank among the full-text candidates, None if not one."""
