"""Table models of the memory layer. The DDL (HNSW and GIN indexes included) lives in
migrations 0003, 0005 and 0011 (erasure tombstones); these mappings only describe the
columns to SQLAlchemy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


class Memory(Base):
    """One long-term memory: an episodic turn, a fact or a summary, scoped to an agent.

    `agent_id`, `session_id` and the `source_*` ids carry no foreign key yet: the tables they
    point to arrive with the agents issue."""

    __tablename__ = "memories"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID]
    user_id: Mapped[str | None] = mapped_column(String(256))
    session_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text, server_default="")
    # Half precision (migration 0005): half the pages, no measurable loss for unit vectors.
    # The width is the database's (the model's, memory.model_record), not fixed here.
    embedding: Mapped[Any] = mapped_column(HALFVEC())
    context_embedding: Mapped[Any] = mapped_column(HALFVEC())
    search_tsv: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english'::regconfig, content), 'A') || "
            "setweight(to_tsvector('english'::regconfig, context), 'D')",
            persisted=True,
        ),
    )
    importance: Mapped[float] = mapped_column(Float, server_default="0.5")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    source_run_id: Mapped[uuid.UUID | None]
    source_message_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_accessed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    access_count: Mapped[int] = mapped_column(Integer, server_default="0")


class MemoryBlock(Base):
    """A labelled core-memory block of an agent (user_id '') or of one user of an agent."""

    __tablename__ = "memory_blocks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID]
    user_id: Mapped[str] = mapped_column(String(256), server_default="")
    label: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    char_limit: Mapped[int]
    version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MemoryBlockVersion(Base):
    """One past or current value of a block: the history is append-only."""

    __tablename__ = "memory_block_versions"

    block_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("memory_blocks.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]
    value: Mapped[str] = mapped_column(Text)
    char_limit: Mapped[int]
    author: Mapped[str] = mapped_column(String(64))
    edit_key: Mapped[str | None] = mapped_column(Text)
    """Idempotency key of the tool call that wrote it (migration 0009); None for others."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Erasure(Base):
    """A tombstone (migration 0011): an end user's data (of one agent, or of all with
    `agent_id` None) or one session was erased at `erased_at`; memory.erasure refuses writes
    that began before it."""

    __tablename__ = "erasures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None]
    user_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    """SHA-256 of the tenant id and the user id (memory.erasure.user_hash), never the id."""
    session_id: Mapped[uuid.UUID | None]
    erased_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
