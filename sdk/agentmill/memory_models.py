"""Response models of long-term memories and core memory blocks (mirrors of the server's
api/schemas/memories.py and api/schemas/blocks.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

MemoryKind = Literal["fact", "episodic", "summary"]


class Memory(BaseModel):
    """A long-term memory: a short text an agent remembers, maybe about one end user."""

    id: uuid.UUID
    agent_id: uuid.UUID
    user_id: str | None
    """The end user it is about (what an erase removes)."""
    session_id: uuid.UUID | None
    kind: str
    """fact, episodic (a conversation turn) or summary."""
    content: str
    importance: float
    """0..1; weighs in ranking."""
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_accessed_at: datetime | None
    access_count: int
    """Searches that returned it."""
    source_run_id: uuid.UUID | None
    source_message_id: uuid.UUID | None


class MemoryWritten(Memory):
    """The memory an `add` stored, or the near-duplicate it updated instead."""

    deduplicated: bool
    """True: an existing memory was updated rather than a new one stored."""


class MemoryHit(BaseModel):
    """One search result; scores are higher for better hits, comparable within one search."""

    score: float
    memory: Memory


class Block(BaseModel):
    """A core memory block: labelled text always at the top of the agent's context."""

    label: str
    value: str
    char_limit: int
    version: int
    """Raised by each change of value or limit."""
    user_id: str | None
    """The end user it is about; None: the agent's own."""
    updated_at: datetime


class BlockVersion(BaseModel):
    """One entry of a block's history."""

    version: int
    value: str
    char_limit: int
    author: str
    """`api` for writes over REST, `agent` for the agent's memory tools."""
    created_at: datetime
