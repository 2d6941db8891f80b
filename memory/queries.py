"""The memory repository: every SQL statement on `memories`, each scoped to one tenant.

Functions take an open `Session` (from `core.db.transaction`) and a tenant id; nothing here
embeds text or ranks results (that is memory.writer, memory.retrieval and memory.store).
The search's candidate statement is memory.candidates."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import (
    ColumnElement,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on, insert
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound
from memory.filters import MemoryFilter
from memory.records import MemoryRecord
from memory.tables import Memory

PUBLIC_COLUMNS = (
    Memory.id,
    Memory.agent_id,
    Memory.user_id,
    Memory.session_id,
    Memory.kind,
    Memory.content,
    Memory.importance,
    Memory.metadata_,
    Memory.created_at,
    Memory.updated_at,
    Memory.last_accessed_at,
    Memory.access_count,
    Memory.source_run_id,
    Memory.source_message_id,
)


def record(row: Sequence[Any]) -> MemoryRecord:
    """The `MemoryRecord` of a row that starts with PUBLIC_COLUMNS."""
    return MemoryRecord(*row[: len(PUBLIC_COLUMNS)])


def conditions(tenant_id: uuid.UUID, where: MemoryFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter, always starting with the tenant."""
    out: list[ColumnElement[bool]] = [Memory.tenant_id == tenant_id]
    if where.agent_id is not None:
        out.append(Memory.agent_id == where.agent_id)
    if where.user_id is not None:
        out.append(Memory.user_id == where.user_id)
    elif where.no_user:
        out.append(Memory.user_id.is_(None))
    if where.session_id is not None:
        out.append(Memory.session_id == where.session_id)
    if where.kinds is not None:
        out.append(Memory.kind.in_(where.kinds))
    if where.created_after is not None:
        out.append(Memory.created_at >= where.created_after)
    if where.created_before is not None:
        out.append(Memory.created_at < where.created_before)
    if where.metadata:
        out.append(Memory.metadata_.contains(dict(where.metadata)))
    return out


def insert_memories(
    session: Session, tenant_id: uuid.UUID, rows: Sequence[Mapping[str, Any]]
) -> list[uuid.UUID]:
    """Insert rows (column -> value, without tenant) in one statement; return their ids."""
    if not rows:
        return []
    values = [{**row, "id": row.get("id") or uuid.uuid4(), "tenant_id": tenant_id} for row in rows]
    session.execute(insert(Memory), values)
    return [value["id"] for value in values]


@dataclass(frozen=True)
class DuplicateScope:
    """Where near-duplicates are looked for: tenant, agent, user and kind, and for episodic
    memories also the session (the same words said in another session are another event)."""

    agent_id: uuid.UUID
    """Agent."""
    user_id: str | None
    """End user (None matches only memories without one)."""
    kind: str
    """episodic, fact or summary."""
    session_id: uuid.UUID | None
    """Session; only compared for episodic memories."""


def _scope_conditions(tenant_id: uuid.UUID, scope: DuplicateScope) -> list[ColumnElement[bool]]:
    out = [
        Memory.tenant_id == tenant_id,
        Memory.agent_id == scope.agent_id,
        Memory.user_id.is_(None) if scope.user_id is None else Memory.user_id == scope.user_id,
        Memory.kind == scope.kind,
    ]
    if scope.kind == "episodic":
        out.append(
            Memory.session_id.is_(None)
            if scope.session_id is None
            else Memory.session_id == scope.session_id
        )
    return out


def _halfvecs(name: str, vectors: Sequence[Any]) -> ColumnElement[Any]:
    kind = ARRAY(HALFVEC())  # any width: the column's (the model's) applies
    return cast(bindparam(name, list(vectors), type_=kind), kind)


def nearest_duplicates(
    session: Session,
    tenant_id: uuid.UUID,
    scope: DuplicateScope,
    embeddings: Sequence[Any],
    min_similarity: float,
) -> list[uuid.UUID | None]:
    """For each embedding (a list or array), the most similar stored memory of `scope` with
    cosine similarity >= `min_similarity`, or None. One statement for the whole list; exact
    distances over the scope's rows (found through the B-tree indexes), so no match is lost
    to an approximate index."""
    if not embeddings:
        return []
    incoming = (
        func.unnest(_halfvecs("embeddings", embeddings))
        .table_valued("e", with_ordinality="i")
        .render_derived("incoming")
    )
    distance = Memory.embedding.cosine_distance(incoming.c.e)
    query = (
        select(incoming.c.i, Memory.id)
        .ext(distinct_on(incoming.c.i))
        .select_from(incoming)
        .join(Memory, true())
        .where(*_scope_conditions(tenant_id, scope), distance <= 1.0 - min_similarity)
        .order_by(incoming.c.i, distance)
    )
    found: list[uuid.UUID | None] = [None] * len(embeddings)
    for position, memory_id in session.execute(query):
        found[int(position) - 1] = memory_id
    return found


def merge_duplicates(
    session: Session, tenant_id: uuid.UUID, merges: Sequence[tuple[uuid.UUID, Mapping[str, Any]]]
) -> None:
    """Overwrite near-duplicates with newer writes (memory id, row values): text, embeddings
    and context replaced, metadata merged (new keys win), the higher importance kept,
    updated_at now. One executemany, applied in list order."""
    if not merges:
        return

    def new(name: str, like: Any = None) -> Any:
        return bindparam(f"new_{name}", type_=None if like is None else like.type)

    statement = (
        update(Memory)
        .where(Memory.tenant_id == tenant_id, Memory.id == new("id"))
        .values(
            content=new("content"),
            context=new("context"),
            embedding=new("embedding", Memory.embedding),
            context_embedding=new("context_embedding", Memory.context_embedding),
            metadata_=Memory.metadata_.op("||")(new("metadata", Memory.metadata_)),
            importance=func.greatest(Memory.importance, new("importance")),
            source_run_id=func.coalesce(
                new("source_run_id", Memory.source_run_id), Memory.source_run_id
            ),
            source_message_id=func.coalesce(
                new("source_message_id", Memory.source_message_id), Memory.source_message_id
            ),
            updated_at=func.now(),
        )
    )
    columns = ("content", "context", "embedding", "context_embedding", "importance")
    session.connection().execute(
        statement,
        [
            {
                "new_id": memory_id,
                "new_metadata": dict(values["metadata_"]),
                "new_source_run_id": values.get("source_run_id"),
                "new_source_message_id": values.get("source_message_id"),
                **{f"new_{name}": values[name] for name in columns},
            }
            for memory_id, values in merges
        ],
    )


@dataclass(frozen=True)
class StoredTurn:
    """An episodic memory already stored in a session, as a neighbour of new turns."""

    content: str
    """Its text."""
    embedding: Sequence[float]
    """Its content embedding."""


def recent_in_sessions(
    session: Session, tenant_id: uuid.UUID, session_ids: Sequence[uuid.UUID], n: int
) -> dict[uuid.UUID, list[StoredTurn]]:
    """The last `n` episodic memories written in each session, oldest first (one statement)."""
    if not session_ids or n <= 0:
        return {sid: [] for sid in session_ids}
    newest = func.row_number().over(partition_by=Memory.session_id, order_by=Memory.seq.desc())
    ranked = (
        select(Memory.session_id, Memory.seq, Memory.content, Memory.embedding, newest.label("r"))
        .where(
            Memory.tenant_id == tenant_id,
            Memory.session_id.in_(list(session_ids)),
            Memory.kind == "episodic",
        )
        .subquery()
    )
    rows = session.execute(
        select(ranked.c.session_id, ranked.c.content, ranked.c.embedding)
        .where(ranked.c.r <= n)
        .order_by(ranked.c.session_id, ranked.c.seq)
    )
    out: dict[uuid.UUID, list[StoredTurn]] = {sid: [] for sid in session_ids}
    for session_id, content, embedding in rows:
        out[session_id].append(StoredTurn(content, embedding))
    return out


def get_memory(session: Session, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRecord:
    """One memory of this tenant, or `NotFound` (also for another tenant's id)."""
    row = session.execute(
        select(*PUBLIC_COLUMNS).where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
    ).one_or_none()
    if row is None:
        raise NotFound("memory", str(memory_id))
    return record(row)


def list_memories(
    session: Session,
    tenant_id: uuid.UUID,
    where: MemoryFilter,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[MemoryRecord]:
    """Memories matching the filter newest first, `limit` of them after the (created_at, id)
    key of the previous page's last."""
    query = select(*PUBLIC_COLUMNS).where(*conditions(tenant_id, where))
    if before is not None:
        query = query.where(tuple_(Memory.created_at, Memory.id) < tuple_(*before))
    order = (Memory.created_at.desc(), Memory.id.desc())
    rows = session.execute(query.order_by(*order).limit(limit))
    return [record(row) for row in rows]


def delete_memory(session: Session, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> None:
    """Delete one memory of this tenant, or `NotFound`."""
    deleted = session.scalar(
        delete(Memory)
        .where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
        .returning(Memory.id)
    )
    if deleted is None:
        raise NotFound("memory", str(memory_id))


def memory_context(session: Session, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> str:
    """The retrieval context text of one memory, or `NotFound`."""
    context = session.scalar(
        select(Memory.context).where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
    )
    if context is None:
        raise NotFound("memory", str(memory_id))
    return context


def patch_memory(
    session: Session,
    tenant_id: uuid.UUID,
    memory_id: uuid.UUID,
    values: Mapping[str, Any],
    min_similarity: float,
) -> MemoryRecord:
    """Apply the non-None column values to one memory, row-locked, and stamp updated_at.
    New content (with its `embedding`) that a near-duplicate in the memory's scope already
    holds is `Conflict`, naming that memory; `NotFound` for an unknown memory."""
    row = session.execute(
        select(*PUBLIC_COLUMNS)
        .where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("memory", str(memory_id))
    current = record(row)
    changes = {name: value for name, value in values.items() if value is not None}
    if "embedding" in changes:
        session_id = current.session_id if current.kind == "episodic" else None
        scope = DuplicateScope(current.agent_id, current.user_id, current.kind, session_id)
        distance = Memory.embedding.cosine_distance(changes["embedding"])
        twin = session.scalar(
            select(Memory.id)
            .where(
                *_scope_conditions(tenant_id, scope),
                Memory.id != memory_id,
                distance <= 1.0 - min_similarity,
            )
            .order_by(distance)
            .limit(1)
        )
        if twin is not None:
            raise Conflict(
                f"memory {twin} already holds this content (a near-duplicate); change or "
                "delete that one instead",
                param="content",
            )
    if "metadata_" in changes:
        changes["metadata_"] = dict(changes["metadata_"])
    updated = session.execute(
        update(Memory)
        .where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
        .values(**changes, updated_at=func.now())
        .returning(*PUBLIC_COLUMNS)
    ).one()
    return record(updated)


def record_access(session: Session, tenant_id: uuid.UUID, counts: Mapping[uuid.UUID, int]) -> None:
    """Add to the access counts of memories returned by searches and stamp last_accessed_at."""
    if not counts:
        return
    ids = list(counts)
    session.execute(
        text(
            "UPDATE memories m SET access_count = m.access_count + c.n, last_accessed_at = now() "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[])) AS c(id, n) "
            "WHERE m.tenant_id = :tenant AND m.id = c.id"
        ),
        {"ids": ids, "ns": [counts[i] for i in ids], "tenant": tenant_id},
    )


_TENANT_WORDS = text(
    "WITH sample AS (SELECT search_tsv FROM memories WHERE tenant_id = :tenant LIMIT :sample), "
    "scale AS (SELECT (SELECT count(*) FROM memories WHERE tenant_id = :tenant)::float8 "
    "/ greatest((SELECT count(*) FROM sample), 1) AS factor) "
    "SELECT w.lexeme, count(*) * scale.factor FROM sample "
    "CROSS JOIN LATERAL unnest(sample.search_tsv) AS w(lexeme, positions, weights) "
    "CROSS JOIN scale GROUP BY w.lexeme, scale.factor ORDER BY count(*) DESC, w.lexeme LIMIT :most"
)


def word_postings(
    session: Session, tenant_id: uuid.UUID, *, sample: int, most: int
) -> list[tuple[str, float]]:
    """The `most` commonest lexemes of one tenant's `search_tsv`, each with the number of that
    tenant's memories estimated to hold it: counted in up to `sample` of its memories, scaled
    to all of them. Nothing of another tenant counts (the table-wide pg_stats would let one
    tenant's words change which words select candidates in another's searches)."""
    rows = session.execute(
        _TENANT_WORDS, {"tenant": tenant_id, "sample": sample, "most": most}
    ).all()
    return [(str(lexeme), float(count)) for lexeme, count in rows]
