"""`agentmill memory reembed`: every memory's vectors again, with the configured model.

One transaction, so a failure or a Ctrl-C leaves the old vectors, indexes and model record as
they were (run it again), and a success leaves no memory of the old model behind:

1. lock `memories` (ACCESS EXCLUSIVE: writers and searches wait until the commit, none fails
   or sees half the table) and drop its HNSW indexes, the table-wide two and the scope
   indexes (memory.scope_indexes): one build at the end costs far less than maintaining them
   through every row's update;
2. when the dimension changes, retype both vector columns to `halfvec(new)` (kept on the row:
   a new type resets the storage migration 0008 set, so it is set again);
3. embed every memory's content in batches (in `seq` order) and store it;
4. context vectors as the writer builds them (memory.writer): a memory without context reuses
   its content vector; a turn whose context is still the text of its neighbouring turns
   (memory.windows.match_window) gets the normalised sum of its own and their new content
   vectors; any other context (a caller's, or a window whose neighbour has since been deleted
   or rewritten) is embedded as "content\\ncontext";
5. rebuild the table-wide HNSW indexes and record the model (memory.model_record).

After the commit it analyses the table and runs one scope indexer pass, which builds the
scope indexes that are due (CREATE INDEX CONCURRENTLY cannot run in the transaction).

Memories written with a precomputed embedding get the model's vector of their content: the
caller's vector came from another model. Processes started with the old model must be stopped
first: the lock only makes them wait, and a worker of the old model that writes after the
commit would store vectors of the old model (docs/memory.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import Connection, Engine, bindparam, text

from core.config import Settings
from core.db import transaction
from memory import model_record, writer
from memory.embedder import Embedder
from memory.model_record import ModelRecord
from memory.scope_indexes import ScopeIndexer, existing_indexes
from memory.windows import AFTER, BEFORE, match_window

Progress = Callable[[str, int, int], None]
"""Called after each batch with the stage ("content" or "context"), rows done and rows due."""

DEFAULT_BATCH = 256
"""Memories embedded per model call."""

_MAIN_INDEXES = (
    ("ix_memories_embedding", "embedding"),
    ("ix_memories_context_embedding", "context_embedding"),
)
_HNSW = "WITH (m = 16, ef_construction = 64)"  # as migration 0005 built them


@dataclass(frozen=True)
class Reembedded:
    """What a re-embed did."""

    memories: int
    """Memories re-embedded."""
    before: ModelRecord
    """The record it replaced."""
    after: ModelRecord
    """The record it wrote."""
    scope_indexes: int
    """Scope indexes built after the commit."""


def reembed(
    engine: Engine,
    embedder: Embedder,
    settings: Settings,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> Reembedded:
    """Re-embed every memory with `embedder` and record its model; see the module docstring."""
    report = progress or (lambda stage, done, total: None)
    dimension = embedder.dimension
    with transaction(engine) as session:
        conn = session.connection()
        conn.execute(text("LOCK TABLE memories IN ACCESS EXCLUSIVE MODE"))
        before = model_record.read(conn)
        for index in existing_indexes(conn):
            conn.exec_driver_sql(f'DROP INDEX "{index.name}"')
        for name, _ in _MAIN_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        if dimension != before.dimension:
            _retype(conn, dimension)
        total = int(conn.execute(text("SELECT count(*) FROM memories")).scalar_one())
        _contents(conn, embedder, total, batch, report)
        _contexts(conn, embedder, batch, report)
        if dimension != before.dimension:
            conn.exec_driver_sql(
                "ALTER TABLE memories ALTER COLUMN embedding SET NOT NULL, "
                "ALTER COLUMN context_embedding SET NOT NULL"
            )
        for name, column in _MAIN_INDEXES:
            conn.exec_driver_sql(
                f"CREATE INDEX {name} ON memories USING hnsw ({column} halfvec_cosine_ops) {_HNSW}"
            )
        model_record.write(conn, model_record.model_of(embedder))
        after = model_record.read(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE memories"))  # the scope indexer reads its statistics
    built = ScopeIndexer(
        engine,
        min_rows=settings.memory_scope_index_min_rows,
        max_scopes=settings.memory_scope_index_max,
        max_per_tenant=settings.memory_scope_index_max_per_tenant,
    ).run_once()
    return Reembedded(total, before, after, len(built.created))


def _retype(conn: Connection, dimension: int) -> None:
    # The old vectors cannot be cast to the new width: NULL until the passes fill them in.
    conn.exec_driver_sql(
        "ALTER TABLE memories "
        "ALTER COLUMN embedding DROP NOT NULL, ALTER COLUMN context_embedding DROP NOT NULL"
    )
    conn.exec_driver_sql(
        "ALTER TABLE memories "
        f"ALTER COLUMN embedding TYPE halfvec({dimension}) USING NULL, "
        f"ALTER COLUMN context_embedding TYPE halfvec({dimension}) USING NULL, "
        "ALTER COLUMN embedding SET STORAGE PLAIN, "
        "ALTER COLUMN context_embedding SET STORAGE PLAIN"
    )


_CONTENT_PAGE = text(
    "SELECT id, seq, content FROM memories WHERE seq > :after ORDER BY seq LIMIT :n"
)
_SET_EMBEDDING = text("UPDATE memories SET embedding = :vector WHERE id = :id").bindparams(
    bindparam("vector", type_=HALFVEC())
)


def _contents(
    conn: Connection, embedder: Embedder, total: int, batch: int, report: Progress
) -> None:
    done, after = 0, -1
    while rows := conn.execute(_CONTENT_PAGE, {"after": after, "n": batch}).all():
        vectors = embedder.embed([row.content for row in rows])
        conn.execute(
            _SET_EMBEDDING,
            [{"id": row.id, "vector": v} for row, v in zip(rows, vectors, strict=True)],
        )
        done, after = done + len(rows), rows[-1].seq
        report("content", done, total)


_SAME_AS_CONTENT = text(
    "UPDATE memories SET context_embedding = embedding WHERE context = '' "
    "AND context_embedding IS DISTINCT FROM embedding"
)
_CONTEXT_COUNT = text("SELECT count(*) FROM memories WHERE context <> ''")
_CONTEXT_PAGE = text(
    "SELECT id, seq, kind, session_id, content, context, embedding FROM memories "
    "WHERE context <> '' AND seq > :after ORDER BY seq LIMIT :n"
).columns(embedding=HALFVEC())
# The turns stored just before and after each memory in its session, as the writer found them
# (memory.queries.recent_in_sessions: the session's episodic memories in `seq` order).
_NEIGHBOURS = text(
    "SELECT m.id, n.side, n.content, n.embedding FROM memories m CROSS JOIN LATERAL ("
    "(SELECT 'b' AS side, b.seq, b.content, b.embedding FROM memories b "
    "WHERE b.tenant_id = m.tenant_id AND b.session_id = m.session_id AND b.kind = 'episodic' "
    "AND b.seq < m.seq ORDER BY b.seq DESC LIMIT :before_n) UNION ALL "
    "(SELECT 'a' AS side, a.seq, a.content, a.embedding FROM memories a "
    "WHERE a.tenant_id = m.tenant_id AND a.session_id = m.session_id AND a.kind = 'episodic' "
    "AND a.seq > m.seq ORDER BY a.seq LIMIT :after_n)) AS n "
    "WHERE m.id = ANY(:ids) ORDER BY m.id, n.seq"
).columns(embedding=HALFVEC())
_SET_CONTEXT = text("UPDATE memories SET context_embedding = :vector WHERE id = :id").bindparams(
    bindparam("vector", type_=HALFVEC())
)


@dataclass
class _Neighbours:
    before: list[tuple[str, Any]]
    after: list[tuple[str, Any]]


def _contexts(conn: Connection, embedder: Embedder, batch: int, report: Progress) -> None:
    conn.execute(_SAME_AS_CONTENT)
    total = int(conn.execute(_CONTEXT_COUNT).scalar_one())
    done, after = 0, -1
    while rows := conn.execute(_CONTEXT_PAGE, {"after": after, "n": batch}).all():
        windowed = [row.id for row in rows if row.kind == "episodic" and row.session_id]
        around: dict[uuid.UUID, _Neighbours] = {}
        for mid, side, content, vector in conn.execute(
            _NEIGHBOURS, {"ids": windowed, "before_n": BEFORE, "after_n": AFTER}
        ):
            found = around.setdefault(mid, _Neighbours([], []))
            (found.before if side == "b" else found.after).append((content, vector))
        vectors: dict[uuid.UUID, Any] = {}
        texts: list[tuple[uuid.UUID, str]] = []
        for row in rows:
            nb = around.get(row.id, _Neighbours([], []))
            vector = _window_vector(row.context, row.embedding, nb)
            if vector is None:
                texts.append((row.id, writer.context_text(row.content, row.context)))
            else:
                vectors[row.id] = vector
        if texts:
            for (mid, _), v in zip(texts, embedder.embed([t for _, t in texts]), strict=True):
                vectors[mid] = v
        conn.execute(_SET_CONTEXT, [{"id": mid, "vector": v} for mid, v in vectors.items()])
        done, after = done + len(rows), rows[-1].seq
        report("context", done, total)


def _window_vector(context: str, own: Sequence[float], nb: _Neighbours) -> Any:
    """The writer's context vector when `context` is still its neighbours' text, else None."""
    window = match_window(context, [c for c, _ in nb.before], [c for c, _ in nb.after])
    if window is None:
        return None
    n, m = window
    chosen = [*nb.before[len(nb.before) - n :], *nb.after[:m]]
    vectors = [np.asarray(v, dtype=np.float32) for _, v in chosen]
    return writer.context_vector(np.asarray(own, dtype=np.float32), vectors)
