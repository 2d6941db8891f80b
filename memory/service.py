"""`MemoryStore`: the one object agents/ and api/ use for long-term memory and core blocks.

It validates input, embeds (batched), decides inserts versus near-duplicate updates, and ranks
search candidates; the SQL lives in memory.store and memory.blocks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import transaction
from core.errors import ConfigError
from memory import blocks, store
from memory.access import AccessRecorder
from memory.embedder import Embedder
from memory.errors import (
    ContentTooLarge,
    EmbeddingDimensionMismatch,
    EmptyContent,
    InvalidMemoryInput,
)
from memory.filters import MemoryFilter
from memory.models import EMBEDDING_DIMENSION
from memory.records import MemoryRecord, NewMemory, SearchHit, WriteResult
from memory.retrieval import DEFAULT_WEIGHTS, RetrievalWeights, rank
from memory.windows import BEFORE, Window, windows

MAX_K = 100
"""Most results one search returns."""


@dataclass
class _Pending:
    """A memory on its way in: validated, with its vectors."""

    item: NewMemory
    window: Window
    embedding: np.ndarray[Any, Any]
    context_embedding: np.ndarray[Any, Any]
    result: WriteResult | None = None


def _scope(item: NewMemory) -> tuple[object, ...]:
    session = item.session_id if item.kind == "episodic" else None
    return (item.agent_id, item.user_id, item.kind, session)


class MemoryStore:
    """Long-term memories and core memory blocks of every tenant, always scoped by tenant."""

    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        settings: Settings,
        *,
        weights: RetrievalWeights = DEFAULT_WEIGHTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if embedder.dimension != EMBEDDING_DIMENSION:
            raise ConfigError(
                f"the embedder produces {embedder.dimension}-dimensional vectors but the memory "
                f"tables hold {EMBEDDING_DIMENSION}; use a {EMBEDDING_DIMENSION}-dimensional model"
            )
        self.engine = engine
        self.embedder = embedder
        self.settings = settings
        self.weights = weights
        self._clock = clock
        self._access = AccessRecorder(engine)

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Write pending access statistics and stop the background writer."""
        self._access.close()

    def flush_access_stats(self) -> None:
        """Write pending access statistics now (they are otherwise written within a second)."""
        self._access.flush()

    # -- writing ---------------------------------------------------------------------------

    def add(self, tenant_id: uuid.UUID, memory: NewMemory) -> WriteResult:
        """Store one memory (or update its near-duplicate)."""
        return self.add_many(tenant_id, [memory])[0]

    def add_many(self, tenant_id: uuid.UUID, memories: Sequence[NewMemory]) -> list[WriteResult]:
        """Store memories in one transaction, embedding them in one batch. Episodic memories
        of a session are indexed with their neighbouring turns (earlier ones already stored,
        later ones in this batch, in list order). A memory whose embedding is within
        `memory_dedupe_similarity` of one in its scope updates that one instead."""
        for item in memories:
            self._validate(item)
        if not memories:
            return []
        with transaction(self.engine) as session:
            stored = {
                sid: store.recent_in_session(session, tenant_id, sid, BEFORE)
                for sid in {m.session_id for m in memories if self._windowed(m)}
                if sid is not None
            }
            pending = self._embed(memories, stored)
            self._dedupe_and_write(session, tenant_id, pending)
        return [p.result for p in pending if p.result is not None]

    def _validate(self, item: NewMemory) -> None:
        limit = self.settings.memory_max_content_chars
        if not item.content.strip():
            raise EmptyContent()
        if len(item.content) > limit:
            raise ContentTooLarge(len(item.content), limit)
        if item.context is not None and len(item.context) > 4 * limit:
            raise ContentTooLarge(len(item.context), 4 * limit, param="context")
        if not 0.0 <= item.importance <= 1.0:
            raise InvalidMemoryInput("importance must be between 0 and 1", param="importance")
        if item.created_at is not None and item.created_at.tzinfo is None:
            raise InvalidMemoryInput("created_at needs a timezone", param="created_at")
        if item.embedding is not None and len(item.embedding) != EMBEDDING_DIMENSION:
            raise EmbeddingDimensionMismatch(len(item.embedding), EMBEDDING_DIMENSION)
        MemoryFilter(kinds=(item.kind,))  # refuses an unknown kind

    @staticmethod
    def _windowed(item: NewMemory) -> bool:
        return item.context is None and item.kind == "episodic" and item.session_id is not None

    def _embed(
        self, memories: Sequence[NewMemory], stored: Mapping[uuid.UUID, list[str]]
    ) -> list[_Pending]:
        by_session: dict[uuid.UUID, list[int]] = {}
        for i, item in enumerate(memories):
            if self._windowed(item) and item.session_id is not None:
                by_session.setdefault(item.session_id, []).append(i)
        item_windows = [
            Window(before=(), after=(m.context,) if m.context else ()) for m in memories
        ]
        for sid, positions in by_session.items():
            for i, win in zip(
                positions,
                windows(stored[sid], [memories[i].content for i in positions]),
                strict=True,
            ):
                item_windows[i] = win
        # One embedder call for every text that needs a vector.
        texts: list[str] = []
        slots: list[tuple[int, str]] = []
        for i, (item, win) in enumerate(zip(memories, item_windows, strict=True)):
            if item.embedding is None:
                slots.append((i, "content"))
                texts.append(item.content)
            if win.context:
                slots.append((i, "context"))
                texts.append(win.embedding_text(item.content))
        vectors = self.embedder.embed(texts)
        found: dict[tuple[int, str], np.ndarray[Any, Any]] = {
            slot: vectors[j] for j, slot in enumerate(slots)
        }
        pending = []
        for i, (item, win) in enumerate(zip(memories, item_windows, strict=True)):
            content_vec = found.get((i, "content"))
            if content_vec is None:
                raw = np.asarray(item.embedding, dtype=np.float32)
                content_vec = raw / (np.linalg.norm(raw) or 1.0)
            pending.append(
                _Pending(
                    item=item,
                    window=win,
                    embedding=content_vec,
                    # Without neighbours a memory's context is itself.
                    context_embedding=found.get((i, "context"), content_vec),
                )
            )
        return pending

    def _dedupe_and_write(
        self, session: Session, tenant_id: uuid.UUID, pending: list[_Pending]
    ) -> None:
        threshold = self.settings.memory_dedupe_similarity
        kept: list[_Pending] = []
        for entry in pending:
            item = entry.item
            twin = next(
                (
                    k
                    for k in kept
                    if _scope(k.item) == _scope(item)
                    and float(np.dot(k.embedding, entry.embedding)) >= threshold
                ),
                None,
            )
            if twin is not None:  # a near-duplicate earlier in this batch: the later one wins
                assert twin.result is not None
                merged_meta = {**twin.item.metadata, **item.metadata}
                importance = max(twin.item.importance, item.importance)
                twin.item = replace(item, metadata=merged_meta, importance=importance)
                twin.window, twin.embedding = entry.window, entry.embedding
                twin.context_embedding = entry.context_embedding
                entry.result = WriteResult(id=twin.result.id, deduplicated=True)
                continue
            existing = store.nearest_duplicate(
                session,
                tenant_id,
                agent_id=item.agent_id,
                user_id=item.user_id,
                kind=item.kind,
                session_id=item.session_id,
                embedding=entry.embedding.tolist(),
                min_similarity=threshold,
            )
            if existing is not None:
                store.merge_duplicate(session, tenant_id, existing, self._row(entry))
                entry.result = WriteResult(id=existing, deduplicated=True)
                continue
            entry.result = WriteResult(id=uuid.uuid4(), deduplicated=False)
            kept.append(entry)
        store.insert_memories(
            session,
            tenant_id,
            [{**self._row(k), "id": k.result.id} for k in kept if k.result is not None],
        )

    def _row(self, entry: _Pending) -> dict[str, Any]:
        item = entry.item
        row: dict[str, Any] = {
            "agent_id": item.agent_id,
            "user_id": item.user_id,
            "session_id": item.session_id,
            "kind": item.kind,
            "content": item.content,
            "context": entry.window.context,
            "embedding": entry.embedding.tolist(),
            "context_embedding": entry.context_embedding.tolist(),
            "importance": item.importance,
            "metadata_": dict(item.metadata),
            "source_run_id": item.source_run_id,
            "source_message_id": item.source_message_id,
        }
        if item.created_at is not None:
            row["created_at"] = item.created_at
        return row

    # -- reading ---------------------------------------------------------------------------

    def search(
        self,
        tenant_id: uuid.UUID,
        query: str,
        *,
        k: int = 10,
        where: MemoryFilter | Mapping[str, Any] | None = None,
        weights: RetrievalWeights | None = None,
        now: datetime | None = None,
    ) -> list[SearchHit]:
        """The k memories that best answer `query` among those the filter allows, best first.

        `where` may be a `MemoryFilter` or a mapping of its fields (unknown fields raise
        `UnknownFilterField`). `now` anchors recency (default: the clock)."""
        limit = self.settings.memory_max_content_chars
        if not query.strip():
            raise EmptyContent("query")
        if len(query) > limit:
            raise ContentTooLarge(len(query), limit, param="query")
        if not 1 <= k <= MAX_K:
            raise InvalidMemoryInput(f"k must be between 1 and {MAX_K}", param="k")
        flt = self._filter(where)
        chosen = weights or self.weights
        embedding = self.embedder.embed([query])[0].tolist()
        with transaction(self.engine) as session:
            candidates = store.search_candidates(
                session,
                tenant_id,
                flt,
                query=query,
                embedding=embedding,
                depth=chosen.candidates(k),
                context_text_weight=chosen.context_text_weight,
                ef_search=max(self.settings.memory_ef_search, chosen.candidates(k)),
            )
        hits = rank(candidates, k, now or self._clock(), chosen)
        self._access.record(tenant_id, [hit.memory.id for hit in hits])
        return hits

    def get(self, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRecord:
        """One memory, or `NotFound` (also when it belongs to another tenant)."""
        with transaction(self.engine) as session:
            return store.get_memory(session, tenant_id, memory_id)

    def list_memories(
        self,
        tenant_id: uuid.UUID,
        where: MemoryFilter | Mapping[str, Any] | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> list[MemoryRecord]:
        """Memories matching the filter, newest first."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidMemoryInput("limit must be 1-1000 and offset >= 0", param="limit")
        with transaction(self.engine) as session:
            return store.list_memories(
                session, tenant_id, self._filter(where), limit=limit, offset=offset
            )

    @staticmethod
    def _filter(where: MemoryFilter | Mapping[str, Any] | None) -> MemoryFilter:
        if where is None:
            return MemoryFilter()
        if isinstance(where, MemoryFilter):
            return where
        return MemoryFilter.parse(where)

    # -- deleting --------------------------------------------------------------------------

    def delete(self, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> None:
        """Delete one memory, or `NotFound`."""
        with transaction(self.engine) as session:
            store.delete_memory(session, tenant_id, memory_id)

    def erase_user(
        self, tenant_id: uuid.UUID, user_id: str, *, agent_id: uuid.UUID | None = None
    ) -> int:
        """Erase everything about one end user: memories (with their embeddings) and, unless
        limited to one agent, the user's core blocks. Returns how many rows went."""
        with transaction(self.engine) as session:
            count = store.erase_user(session, tenant_id, user_id, agent_id)
            if agent_id is None:
                count += blocks.erase_user_blocks(session, tenant_id, user_id)
        return count

    # -- core memory blocks ----------------------------------------------------------------

    def set_block(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        value: str,
        *,
        user_id: str | None = None,
        char_limit: int | None = None,
        author: str = "api",
    ) -> blocks.Block:
        """Create or replace a block's value (a change adds a version)."""
        with transaction(self.engine) as session:
            return blocks.set_block(
                session,
                tenant_id,
                agent_id,
                label,
                value,
                user_id=user_id,
                char_limit=char_limit,
                default_limit=self.settings.memory_block_char_limit,
                author=author,
            )

    def append_to_block(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        text: str,
        *,
        user_id: str | None = None,
        author: str = "agent",
    ) -> blocks.Block:
        """Append a line to a block (the agent's core_memory_append)."""
        with transaction(self.engine) as session:
            return blocks.append_to_block(
                session, tenant_id, agent_id, label, text, user_id=user_id, author=author
            )

    def replace_in_block(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        label: str,
        old: str,
        new: str,
        *,
        user_id: str | None = None,
        author: str = "agent",
    ) -> blocks.Block:
        """Replace text in a block (the agent's core_memory_replace)."""
        with transaction(self.engine) as session:
            return blocks.replace_in_block(
                session, tenant_id, agent_id, label, old, new, user_id=user_id, author=author
            )

    def get_block(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, label: str, *, user_id: str | None = None
    ) -> blocks.Block:
        """One block, or `NotFound`."""
        with transaction(self.engine) as session:
            return blocks.get_block(session, tenant_id, agent_id, label, user_id=user_id)

    def list_blocks(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, *, user_id: str | None = None
    ) -> list[blocks.Block]:
        """The blocks an agent's context holds: its own, plus the user's when given."""
        with transaction(self.engine) as session:
            return blocks.list_blocks(session, tenant_id, agent_id, user_id=user_id)

    def block_history(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, label: str, *, user_id: str | None = None
    ) -> list[blocks.BlockVersion]:
        """A block's versions, oldest first."""
        with transaction(self.engine) as session:
            return blocks.block_history(session, tenant_id, agent_id, label, user_id=user_id)

    def delete_block(
        self, tenant_id: uuid.UUID, agent_id: uuid.UUID, label: str, *, user_id: str | None = None
    ) -> None:
        """Delete a block and its history."""
        with transaction(self.engine) as session:
            blocks.delete_block(session, tenant_id, agent_id, label, user_id=user_id)
