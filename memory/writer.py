"""The write path of long-term memory (`MemoryStore.add_many`): validate, embed, window,
deduplicate, write.

The model runs once per memory and before any database work: a turn's context vector is the
normalised sum of its window's turn embeddings (docs/memory.md measured it against a second
model pass over the window text), so the transaction holds no connection while the CPU embeds.
The transaction then makes a fixed number of round trips whatever the batch size: one for the
sessions' latest stored turns, one near-duplicate lookup per scope (a batch of one session's
turns is one scope), one INSERT, and one UPDATE executemany when there are near-duplicates;
for a memory of a user or a session, first two more: the erasure locks and tombstones."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from core.config import Settings
from memory import erasure
from memory import queries as store
from memory.embedder import Embedder
from memory.errors import (
    ContentTooLarge,
    EmbeddingDimensionMismatch,
    EmptyContent,
    InvalidMemoryInput,
)
from memory.filters import MemoryFilter
from memory.records import NewMemory, WriteResult
from memory.windows import BEFORE, windows

Vec = NDArray[np.float32]
"""One unit vector."""


def validate(item: NewMemory, settings: Settings, dimension: int) -> None:
    """Refuse a memory the store would not keep (raises an `InvalidMemoryInput`); a
    precomputed embedding must have the store's `dimension`."""
    limit = settings.memory_max_content_chars
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
    if item.embedding is not None and len(item.embedding) != dimension:
        raise EmbeddingDimensionMismatch(len(item.embedding), dimension)
    MemoryFilter(kinds=(item.kind,))  # refuses an unknown kind


def _unit(vector: Any) -> Vec:
    raw = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(raw))
    out: Vec = raw / norm if norm else raw
    return out


def context_text(content: str, context: str) -> str:
    """What the model embeds for a memory with a caller-supplied context."""
    return f"{content}\n{context}"


def context_vector(own: Vec, neighbours: Sequence[Vec]) -> Vec:
    """A windowed turn's context vector: the normalised sum of its own and its neighbours'
    content vectors."""
    return _unit(np.sum([own, *neighbours], axis=0))


def windowed(item: NewMemory) -> bool:
    """Whether the store builds this memory's context from its session's neighbouring turns."""
    return item.context is None and item.kind == "episodic" and item.session_id is not None


@dataclass(frozen=True)
class Embedded:
    """The model's output for a batch."""

    content: list[Vec]
    """The content vector of each memory, in order (a precomputed `embedding`, normalised)."""
    given_context: dict[int, Vec]
    """For memories with a caller-supplied context: the vector of "content\\ncontext"."""


def embed(embedder: Embedder, memories: Sequence[NewMemory]) -> Embedded:
    """All vectors a batch needs from the model, in one call."""
    texts: list[str] = []
    slots: list[tuple[int, bool]] = []  # (memory, is the given-context text)
    for i, item in enumerate(memories):
        if item.embedding is None:
            slots.append((i, False))
            texts.append(item.content)
        if item.context:
            slots.append((i, True))
            texts.append(context_text(item.content, item.context))
    vectors = embedder.embed(texts) if texts else np.zeros((0, embedder.dimension), np.float32)
    found = {slot: vectors[j] for j, slot in enumerate(slots)}
    return Embedded(
        content=[
            found[(i, False)] if item.embedding is None else _unit(item.embedding)
            for i, item in enumerate(memories)
        ],
        given_context={i: v for (i, is_context), v in found.items() if is_context},
    )


@dataclass
class Pending:
    """A memory on its way in: validated, with its context and vectors."""

    item: NewMemory
    context: str
    embedding: Vec
    context_embedding: Vec
    result: WriteResult | None = None

    @property
    def scope(self) -> store.DuplicateScope:
        """Where its near-duplicates would be."""
        item = self.item
        session = item.session_id if item.kind == "episodic" else None
        return store.DuplicateScope(item.agent_id, item.user_id, item.kind, session)

    def row(self) -> dict[str, Any]:
        """Column values for insert or merge (without id and tenant)."""
        item = self.item
        row: dict[str, Any] = {
            "agent_id": item.agent_id,
            "user_id": item.user_id,
            "session_id": item.session_id,
            "kind": item.kind,
            "content": item.content,
            "context": self.context,
            "embedding": self.embedding,
            "context_embedding": self.context_embedding,
            "importance": item.importance,
            "metadata_": dict(item.metadata),
            "source_run_id": item.source_run_id,
            "source_message_id": item.source_message_id,
        }
        if item.created_at is not None:
            row["created_at"] = item.created_at
        return row


@dataclass(frozen=True)
class _Turn:
    text: str
    vector: Vec


def plan(
    memories: Sequence[NewMemory],
    embedded: Embedded,
    stored: Mapping[uuid.UUID, Sequence[store.StoredTurn]],
) -> list[Pending]:
    """Each memory's context text and context vector (pure). A windowed turn's context is its
    neighbours (earlier ones from `stored`, later ones from this batch, in list order); its
    context vector the normalised sum of its own and its neighbours' content vectors."""
    pending = []
    for i, item in enumerate(memories):
        given = embedded.given_context.get(i)
        pending.append(
            Pending(
                item=item,
                context=item.context or "",
                embedding=embedded.content[i],
                # Without neighbours a memory's context is itself.
                context_embedding=embedded.content[i] if given is None else given,
            )
        )
    by_session: dict[uuid.UUID, list[int]] = {}
    for i, item in enumerate(memories):
        if windowed(item) and item.session_id is not None:
            by_session.setdefault(item.session_id, []).append(i)
    for sid, positions in by_session.items():
        before = [_Turn(t.content, _unit(t.embedding)) for t in stored.get(sid, ())]
        batch = [_Turn(memories[i].content, embedded.content[i]) for i in positions]
        for i, turn, window in zip(positions, batch, windows(before, batch), strict=True):
            if not window.neighbours:
                continue
            pending[i].context = "\n".join(t.text for t in window.neighbours)
            pending[i].context_embedding = context_vector(
                turn.vector, [t.vector for t in window.neighbours]
            )
    return pending


def deduplicate(
    pending: Sequence[Pending], existing: Sequence[uuid.UUID | None], threshold: float
) -> tuple[list[Pending], list[tuple[uuid.UUID, Pending]]]:
    """Decide each memory's fate (pure): a new row, an update of a stored near-duplicate
    (`existing[i]`, found beforehand), or a merge into an earlier memory of the same batch
    (the later one wins). Sets every `result`; returns (new rows, stored rows to update)."""
    kept: list[Pending] = []
    kept_by_scope: dict[store.DuplicateScope, list[Pending]] = {}
    merges: list[tuple[uuid.UUID, Pending]] = []
    for entry, stored_twin in zip(pending, existing, strict=True):
        item, scope = entry.item, entry.scope
        peers = kept_by_scope.get(scope, [])
        twin = None
        if peers:
            similarity = np.stack([p.embedding for p in peers]) @ entry.embedding
            best = int(np.argmax(similarity))
            if float(similarity[best]) >= threshold:
                twin = peers[best]
        if twin is not None:
            assert twin.result is not None
            merged_meta = {**twin.item.metadata, **item.metadata}
            importance = max(twin.item.importance, item.importance)
            twin.item = replace(item, metadata=merged_meta, importance=importance)
            twin.context, twin.embedding = entry.context, entry.embedding
            twin.context_embedding = entry.context_embedding
            entry.result = WriteResult(id=twin.result.id, deduplicated=True)
        elif stored_twin is not None:
            merges.append((stored_twin, entry))
            entry.result = WriteResult(id=stored_twin, deduplicated=True)
        else:
            entry.result = WriteResult(id=uuid.uuid4(), deduplicated=False)
            kept.append(entry)
            kept_by_scope.setdefault(scope, []).append(entry)
    return kept, merges


def write(
    session: Session,
    tenant_id: uuid.UUID,
    memories: Sequence[NewMemory],
    embedded: Embedded,
    threshold: float,
) -> list[WriteResult]:
    """Window, deduplicate and store an embedded batch in the caller's transaction; nothing,
    and `ErasedSource`, when an erase forbids any of it (memory.erasure: checked under the
    locks an erase takes, so a write that began before an erase cannot outlive it)."""
    erasure.check_writes(session, tenant_id, memories)
    session_ids = sorted({m.session_id for m in memories if windowed(m) and m.session_id})
    stored = store.recent_in_sessions(session, tenant_id, session_ids, BEFORE)
    pending = plan(memories, embedded, stored)
    by_scope: dict[store.DuplicateScope, list[int]] = {}
    for i, entry in enumerate(pending):
        by_scope.setdefault(entry.scope, []).append(i)
    existing: list[uuid.UUID | None] = [None] * len(pending)
    for scope, positions in by_scope.items():
        found = store.nearest_duplicates(
            session, tenant_id, scope, [pending[i].embedding for i in positions], threshold
        )
        for i, memory_id in zip(positions, found, strict=True):
            existing[i] = memory_id
    kept, merges = deduplicate(pending, existing, threshold)
    store.insert_memories(
        session,
        tenant_id,
        [{**entry.row(), "id": entry.result.id} for entry in kept if entry.result is not None],
    )
    store.merge_duplicates(session, tenant_id, [(mid, entry.row()) for mid, entry in merges])
    return [entry.result for entry in pending if entry.result is not None]
