"""The memory repository: every SQL statement on `memories`, each scoped to one tenant.

Functions take an open `Session` (from `core.db.transaction`) and a tenant id; nothing here
embeds text or ranks results (that is memory.retrieval and memory.service)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ColumnElement,
    Subquery,
    bindparam,
    cast,
    column,
    delete,
    func,
    literal,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, REAL, TSQUERY, array, insert
from sqlalchemy.orm import Session

from core.errors import NotFound
from memory.filters import MemoryFilter
from memory.models import Memory
from memory.records import MemoryRecord

_PUBLIC = (
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


def _record(row: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(*row[: len(_PUBLIC)])


@dataclass(frozen=True)
class Candidate:
    """A memory some retriever proposed, with its 1-based rank in each retriever."""

    record: MemoryRecord
    """The memory."""
    vector_rank: int | None
    """Rank by cosine distance of the content embedding."""
    context_rank: int | None
    """Rank by cosine distance of the context embedding."""
    text_rank: int | None
    """Rank by full-text score (ts_rank_cd over the OR of the query's lexemes)."""


def conditions(tenant_id: uuid.UUID, where: MemoryFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter, always starting with the tenant."""
    out: list[ColumnElement[bool]] = [Memory.tenant_id == tenant_id]
    if where.agent_id is not None:
        out.append(Memory.agent_id == where.agent_id)
    if where.user_id is not None:
        out.append(Memory.user_id == where.user_id)
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


def nearest_duplicate(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    agent_id: uuid.UUID,
    user_id: str | None,
    kind: str,
    session_id: uuid.UUID | None,
    embedding: Sequence[float],
    min_similarity: float,
) -> uuid.UUID | None:
    """The most similar memory of the same scope with cosine similarity >= `min_similarity`.

    Scope: tenant, agent, user and kind; for episodic memories also the session (the same
    words said in another session are another event)."""
    distance = Memory.embedding.cosine_distance(embedding)
    query = (
        select(Memory.id, distance.label("distance"))
        .where(
            Memory.tenant_id == tenant_id,
            Memory.agent_id == agent_id,
            Memory.user_id.is_(None) if user_id is None else Memory.user_id == user_id,
            Memory.kind == kind,
        )
        .order_by(distance)
        .limit(1)
    )
    if kind == "episodic":
        query = query.where(
            Memory.session_id.is_(None) if session_id is None else Memory.session_id == session_id
        )
    row = session.execute(query).one_or_none()
    if row is None or 1.0 - float(row.distance) < min_similarity:
        return None
    return uuid.UUID(str(row.id))


def merge_duplicate(
    session: Session, tenant_id: uuid.UUID, memory_id: uuid.UUID, values: Mapping[str, Any]
) -> None:
    """Overwrite a near-duplicate with the newer write: its text, embeddings and context,
    metadata merged (new keys win), the higher importance, updated_at now."""
    session.execute(
        update(Memory)
        .where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
        .values(
            content=values["content"],
            context=values["context"],
            embedding=values["embedding"],
            context_embedding=values["context_embedding"],
            metadata_=Memory.metadata_.op("||")(
                literal(dict(values["metadata_"]), Memory.metadata_.type)
            ),
            importance=func.greatest(Memory.importance, values["importance"]),
            source_run_id=func.coalesce(values.get("source_run_id"), Memory.source_run_id),
            source_message_id=func.coalesce(
                values.get("source_message_id"), Memory.source_message_id
            ),
            updated_at=func.now(),
        )
    )


def recent_in_session(
    session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID, n: int
) -> list[str]:
    """Contents of the last `n` episodic memories written in a session, oldest first."""
    query = (
        select(Memory.content)
        .where(
            Memory.tenant_id == tenant_id,
            Memory.session_id == session_id,
            Memory.kind == "episodic",
        )
        .order_by(Memory.seq.desc())
        .limit(n)
    )
    return list(reversed(session.scalars(query).all()))


def get_memory(session: Session, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> MemoryRecord:
    """One memory of this tenant, or `NotFound` (also for another tenant's id)."""
    row = session.execute(
        select(*_PUBLIC).where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
    ).one_or_none()
    if row is None:
        raise NotFound("memory", str(memory_id))
    return _record(row)


def list_memories(
    session: Session, tenant_id: uuid.UUID, where: MemoryFilter, *, limit: int, offset: int = 0
) -> list[MemoryRecord]:
    """Memories matching the filter, newest first."""
    rows = session.execute(
        select(*_PUBLIC)
        .where(*conditions(tenant_id, where))
        .order_by(Memory.created_at.desc(), Memory.id)
        .limit(limit)
        .offset(offset)
    )
    return [_record(row) for row in rows]


def delete_memory(session: Session, tenant_id: uuid.UUID, memory_id: uuid.UUID) -> None:
    """Delete one memory of this tenant, or `NotFound`."""
    deleted = session.scalar(
        delete(Memory)
        .where(Memory.tenant_id == tenant_id, Memory.id == memory_id)
        .returning(Memory.id)
    )
    if deleted is None:
        raise NotFound("memory", str(memory_id))


def erase_user(
    session: Session, tenant_id: uuid.UUID, user_id: str, agent_id: uuid.UUID | None = None
) -> int:
    """Delete every memory about one user (of one agent, or all agents); return the count.

    The rows go with their embeddings and text index entries; VACUUM reclaims the space."""
    query = delete(Memory).where(Memory.tenant_id == tenant_id, Memory.user_id == user_id)
    if agent_id is not None:
        query = query.where(Memory.agent_id == agent_id)
    return len(session.scalars(query.returning(Memory.id)).all())


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


# The OR of the query's lexemes ('a' | 'b' | ...): websearch_to_tsquery would AND them, and
# one missing word would then hide a memory. Lexemes are quoted as tsquery literals.
_OR_TSQUERY = (
    "SELECT CAST(string_agg("
    "'''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ') AS tsquery) "
    "AS tq FROM unnest(to_tsvector('english', CAST(:query AS text)))"
)


def _or_tsquery(query: str) -> Subquery:
    return text(_OR_TSQUERY).bindparams(query=query).columns(column("tq", TSQUERY)).subquery("q")


def search_candidates(
    session: Session,
    tenant_id: uuid.UUID,
    where: MemoryFilter,
    *,
    query: str,
    embedding: Sequence[float],
    depth: int,
    context_text_weight: float,
    ef_search: int,
) -> list[Candidate]:
    """The top `depth` memories of each retriever (content vector, context vector, full text),
    merged into one list with each memory's rank in each.

    Vector retrievers use the HNSW indexes with pgvector's iterative scan (relaxed order, then
    re-sorted here), so a selective filter still yields `depth` rows when that many match."""
    # One round trip for the three transaction-local settings. psycopg prepares a statement
    # after five runs, and a generic plan cannot tell a user with 20 memories (B-tree, exact
    # distances) from one with 20,000 (HNSW): plan each search for its own filter values.
    session.execute(
        text(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.ef_search', :ef, true), "
            "set_config('plan_cache_mode', 'force_custom_plan', true)"
        ),
        {"ef": str(max(ef_search, 1))},
    )
    conds = conditions(tenant_id, where)
    # Each retriever is a subquery ranked by row_number(); one UNION ALL statement returns
    # (id, retriever, rank) and the caller-facing columns in a single round trip.
    retrievers = []
    query_vector = bindparam("query_vector", list(embedding), type_=Vector(len(embedding)))
    for name, vectors in (("vector", Memory.embedding), ("context", Memory.context_embedding)):
        distance = vectors.cosine_distance(query_vector).label("distance")
        top = select(Memory.id, distance).where(*conds).order_by(distance).limit(depth)
        top_sq = top.subquery(f"{name}_top")
        position = func.row_number().over(order_by=top_sq.c.distance)
        retrievers.append(
            select(top_sq.c.id, literal(name).label("retriever"), position.label("position"))
        )
    tsquery = _or_tsquery(query)
    # ts_rank's weights are {D, C, B, A}: the memory is A, its context D.
    weights = cast(array([context_text_weight, 0.0, 0.0, 1.0]), ARRAY(REAL))
    score = func.ts_rank(weights, Memory.search_tsv, tsquery.c.tq).label("score")
    text_top = (
        select(Memory.id, score)
        .select_from(Memory)
        .join(tsquery, true())
        .where(*conds, Memory.search_tsv.op("@@")(tsquery.c.tq))
        .order_by(score.desc())
        .limit(depth)
        .subquery("text_top")
    )
    text_position = func.row_number().over(order_by=text_top.c.score.desc())
    retrievers.append(
        select(text_top.c.id, literal("text").label("retriever"), text_position.label("position"))
    )
    hits = union_all(*retrievers).subquery("hits")
    rows = session.execute(
        select(*_PUBLIC, hits.c.retriever, hits.c.position).join(hits, hits.c.id == Memory.id)
    ).all()
    ranked: dict[uuid.UUID, dict[str, int]] = {}
    records: dict[uuid.UUID, MemoryRecord] = {}
    for row in rows:
        record = records.setdefault(row[0], _record(row))
        ranked.setdefault(record.id, {})[row[-2]] = int(row[-1])
    return [
        Candidate(
            record=records[memory_id],
            vector_rank=ranks.get("vector"),
            context_rank=ranks.get("context"),
            text_rank=ranks.get("text"),
        )
        for memory_id, ranks in ranked.items()
    ]
