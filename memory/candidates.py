"""The candidate stage of a search: one statement runs the three retrievers (content vector,
context vector, full text) over the memories a filter allows and returns each candidate with
its rank in each. Ranking the candidates is memory.retrieval's (pure) job."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import (
    CTE,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, REAL, TEXT, TSQUERY, array
from sqlalchemy.orm import Session

from memory.filters import MemoryFilter
from memory.queries import PUBLIC_COLUMNS, conditions
from memory.queries import record as to_record
from memory.records import MemoryRecord
from memory.tables import Memory


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
    """Rank by full-text score (ts_rank over the OR of the query's lexemes), among the
    memories holding one of its rarer words."""


# The query's words as tsquery literals: `tq` is the OR of them all ('a' | 'b' | ...:
# websearch_to_tsquery would AND them, and one missing word would then hide a memory), `rare`
# the OR of those not in :common (memory.words; NULL when every word is common).
_QUERY_WORDS = (
    "SELECT CAST(string_agg(word, ' | ') AS tsquery) AS tq, "
    "CAST(string_agg(word, ' | ') FILTER (WHERE NOT common_word) AS tsquery) AS rare "
    "FROM (SELECT '''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''' AS word, "
    "lexeme = ANY(string_to_array(CAST(:common AS text), ' ')) AS common_word "
    "FROM unnest(to_tsvector('english', CAST(:query AS text)))) AS w"
)

RETRIEVERS = ("vector", "context", "text")
"""The retrievers' names, in the order of the rank columns of the candidate statement."""

TEXT_POOL = 2000
"""Most memories the full-text retriever scores in one search, whatever the statistics say
(they lag behind the table until the next ANALYZE)."""


def _query_words(query: str, common: str) -> CTE:
    # A CTE: both the pool and the ranking read it, and Postgres computes it once.
    return (
        text(_QUERY_WORDS)
        .bindparams(query=query, common=common)
        .columns(column("tq", TSQUERY), column("rare", TSQUERY))
        .cte("q")
    )


def scope_keys(where: MemoryFilter) -> list[str] | None:
    """The keys of `memory_scope_keys(agent_id, user_id)` (migration 0007) that every memory
    in the filter holds, or None when the filter names no agent."""
    if where.agent_id is None:
        return None
    if where.user_id is None:
        return [f"a:{where.agent_id}"]
    return [f"u:{where.agent_id}:{where.user_id}"]


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
    common_words: str,
    vector_depth: int | None = None,
) -> list[Candidate]:
    """The top `vector_depth` (default `depth`) memories of each vector retriever (content,
    context) and the top `depth` of the full-text retriever, merged into one list with each
    memory's rank in each.

    Vector retrievers use the HNSW indexes with pgvector's iterative scan (relaxed order, then
    re-sorted here), so a selective filter still yields their depth when that many match.

    The full-text retriever's candidates are the memories holding one of the query's words
    that is not in `common_words` (space-separated lexemes, memory.words); it ranks them by all
    of the query's words. A word most memories hold (a user's name, "go") ranks but does not
    select, so the work is bounded by the rarer words' postings in the filter, not by how many
    memories the filter allows."""
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
    # The columns are halfvec: a query vector of the same type keeps the HNSW operator class.
    query_vector = bindparam("query_vector", list(embedding), type_=HALFVEC(len(embedding)))
    for name, vectors in (("vector", Memory.embedding), ("context", Memory.context_embedding)):
        distance = vectors.cosine_distance(query_vector).label("distance")
        top = select(Memory.id, distance).where(*conds).order_by(distance)
        top = top.limit(depth if vector_depth is None else vector_depth)
        top_sq = top.subquery(f"{name}_top")
        position = func.row_number().over(order_by=top_sq.c.distance)
        retrievers.append(
            select(top_sq.c.id, literal(name).label("retriever"), position.label("position"))
        )
    # The words stay inside the statement: with their postings unknown at planning, the planner
    # reads the pool from the scope GIN (EXPLAIN: one Bitmap Index Scan on
    # ix_memories_scope_text) rather than starting from a big user's B-tree entries.
    words = _query_words(query, common_words)
    pool_conds = [*conds, Memory.search_tsv.op("@@")(words.c.rare)]
    keys = scope_keys(where)
    if keys is not None:
        # The index expression of ix_memories_scope_text: the GIN intersects a word's postings
        # with the filter's own, so only the filter's rows are fetched.
        scope = func.memory_scope_keys(Memory.agent_id, Memory.user_id)
        pool_conds.append(scope.op("@>")(cast(array(keys), ARRAY(TEXT))))
    pool = (
        select(Memory.id, Memory.search_tsv)
        .join(words, true())
        .where(*pool_conds)
        .limit(TEXT_POOL)
        .subquery("text_pool")
    )
    # ts_rank's weights are {D, C, B, A}: the memory is A, its context D.
    weights = cast(array([context_text_weight, 0.0, 0.0, 1.0]), ARRAY(REAL))
    score = func.ts_rank(weights, pool.c.search_tsv, words.c.tq).label("score")
    text_top = (
        select(pool.c.id, score)
        .select_from(pool)
        .join(words, true())
        .order_by(score.desc())
        .limit(depth)
        .subquery("text_top")
    )
    text_position = func.row_number().over(order_by=text_top.c.score.desc())
    retrievers.append(
        select(text_top.c.id, literal("text").label("retriever"), text_position.label("position"))
    )
    hits = union_all(*retrievers).subquery("hits")
    # One row per memory with its rank in each retriever (NULL where it was not proposed): a
    # memory two or three retrievers found is fetched and decoded once.
    by_memory = (
        select(
            hits.c.id,
            *(
                func.min(hits.c.position).filter(hits.c.retriever == name).label(name)
                for name in RETRIEVERS
            ),
        )
        .group_by(hits.c.id)
        .subquery("by_memory")
    )
    rows = session.execute(
        select(*PUBLIC_COLUMNS, *(by_memory.c[name] for name in RETRIEVERS)).join(
            by_memory, by_memory.c.id == Memory.id
        )
    ).all()
    return [
        Candidate(
            record=to_record(row),
            vector_rank=row[-3],
            context_rank=row[-2],
            text_rank=row[-1],
        )
        for row in rows
    ]
