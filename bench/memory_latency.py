"""Memory search latency at scale, HNSW recall against exact search, and write throughput.

One tenant holds N memories (default 100,000) over 2 agents. Vectors are synthetic: random
unit vectors scattered around 2,000 random centres (so neighbourhoods exist, as with real
embeddings); texts are 12 words drawn from a Zipf-distributed 20,000-word vocabulary
(content words only: stop-word ranks left out). Per agent
one "big" user owns half its rows (25% of the table) and 50 "small" users share the rest (1%
each). Searches filter on agent and user and run the full candidate stage of
`MemoryStore.search` (both HNSW retrievers with iterative scans, the OR full-text retriever)
with a precomputed query vector (no embedding), timed over --queries queries after a warm-up.
"db" is the time its statements spend in the driver (sent, run, rows received); "all" adds
SQLAlchemy building the statement and decoding rows. HNSW recall@10 compares the
content-vector retriever's top 10 with exact search over the same filtered rows. Insert
throughput uses real text (LoCoMo turns from ../shared/data) and the real embedder, next to the
embedder alone on the same texts. The embedded server runs with agentmill's settings
(core.embedded_pg.server_settings) unless --postgres-defaults.

    .venv/bin/python bench/memory_latency.py [--n 100000] [--queries 300] [--postgres-defaults]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from sqlalchemy import Engine, event, select, text

from core import migrate
from core.config import Settings
from core.db import create_db_engine, transaction
from core.embedded_pg import EmbeddedPostgres
from core.tenants import ensure_tenant
from memory import candidates
from memory.embedder import SentenceTransformerEmbedder
from memory.filters import MemoryFilter
from memory.models import Memory
from memory.records import NewMemory
from memory.retrieval import DEFAULT_WEIGHTS
from memory.service import MemoryStore

REPO = Path(__file__).resolve().parent.parent
LOCOMO = REPO.parent / "shared" / "data" / "locomo-dev.json"
DIM = 384
_HNSW = ("ix_memories_embedding", "ix_memories_context_embedding")


def _unit(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(
        np.float32
    )
    return out


def _synthetic(n: int, rng: np.random.Generator) -> dict[str, Any]:
    centres = _unit(rng.standard_normal((2000, DIM)))
    which = rng.integers(0, len(centres), n)
    vectors = _unit(centres[which] + rng.standard_normal((n, DIM)) * 0.06)
    context = _unit(vectors + rng.standard_normal((n, DIM)) * 0.03)
    # Zipf over ranks 100..20,099: the first hundred ranks of English are stop words, which
    # the full-text index drops anyway; the commonest remaining word is in ~3% of texts.
    vocab = np.array([f"w{i}" for i in range(20_000)])
    zipf = 1.0 / np.arange(100, len(vocab) + 100)
    words = rng.choice(vocab, size=(n, 12), p=zipf / zipf.sum())
    agent = rng.integers(0, 2, n)
    big = rng.random(n) < 0.5
    small = rng.integers(0, 50, n)
    users = np.where(big, "big", np.char.add("small-", small.astype(str)))
    return {
        "centres": centres,
        "vectors": vectors,
        "context": context,
        "words": words,
        "agent": agent,
        "users": users,
        "vocab": vocab,
        "zipf": zipf / zipf.sum(),
    }


def _bulk_load(
    url: str, engine: Engine, tenant: uuid.UUID, agents: list[uuid.UUID], data: dict[str, Any]
) -> float:
    """COPY the rows in with the HNSW indexes dropped, then rebuild them with the migration's
    exact definitions (a bulk load, not the measured write path)."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        ddl = [
            conn.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = :i"), {"i": name})
            for name in _HNSW
        ]
        for name in _HNSW:
            conn.execute(text(f"DROP INDEX {name}"))
    base = datetime(2024, 1, 1, tzinfo=UTC)
    libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as conn:
        register_vector(conn)
        with conn.cursor().copy(
            "COPY memories (id, tenant_id, agent_id, user_id, kind, content, embedding, "
            "context_embedding, created_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                [
                    "uuid",
                    "uuid",
                    "uuid",
                    "varchar",
                    "varchar",
                    "text",
                    "halfvec",
                    "halfvec",
                    "timestamptz",
                ]
            )
            for i in range(len(data["vectors"])):
                copy.write_row(
                    (
                        uuid.uuid4(),
                        tenant,
                        agents[int(data["agent"][i])],
                        str(data["users"][i]),
                        "episodic",
                        " ".join(data["words"][i]),
                        HalfVector(data["vectors"][i]),
                        HalfVector(data["context"][i]),
                        base + timedelta(seconds=i),
                    )
                )
        conn.execute("SET maintenance_work_mem = '1GB'")
        for statement in ddl:
            conn.execute(statement)
        conn.commit()
        # What autovacuum would have done by the time such a table is searched: the GIN
        # pending list merged, the visibility map set, statistics gathered.
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE memories")
    return time.perf_counter() - t0


_cursor_ms: list[float] = []


def _time_cursors(engine: Engine) -> None:
    """Record how long each statement spends in the driver (sent, run, rows received)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *args: Any) -> None:
        _cursor_ms.append((time.perf_counter() - conn.info["bench_t0"]) * 1000)


def _search(
    engine: Engine, tenant: uuid.UUID, where: MemoryFilter, query: str, vector: list[float], ef: int
) -> tuple[float, float, list[candidates.Candidate]]:
    _cursor_ms.clear()
    t0 = time.perf_counter()
    vector_depth = DEFAULT_WEIGHTS.vector_candidates(10)
    with transaction(engine) as session:
        found = candidates.search_candidates(
            session,
            tenant,
            where,
            query=query,
            embedding=vector,
            depth=DEFAULT_WEIGHTS.candidates(10),
            vector_depth=vector_depth,
            context_text_weight=DEFAULT_WEIGHTS.context_text_weight,
            ef_search=max(ef, vector_depth),
        )
    return (time.perf_counter() - t0) * 1000, sum(_cursor_ms), found


def _scenario(
    engine: Engine,
    tenant: uuid.UUID,
    agents: list[uuid.UUID],
    data: dict[str, Any],
    user_of: Any,
    queries: int,
    ef: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    times, db_times, recalls, sizes = [], [], [], []
    ids_by_row: dict[str, Any] = {}
    for i in range(20 + queries):
        agent_ix = int(rng.integers(0, 2))
        user = user_of(rng)
        where = MemoryFilter(agent_id=agents[agent_ix], user_id=user)
        centre = data["centres"][int(rng.integers(0, len(data["centres"])))]
        q = _unit((centre + rng.standard_normal(DIM) * 0.06)[None, :])[0]
        words = " ".join(rng.choice(data["vocab"], size=5, p=data["zipf"]))
        ms, db_ms, found = _search(engine, tenant, where, words, q.tolist(), ef)
        if i < 20:
            continue  # warm-up
        times.append(ms)
        db_times.append(db_ms)
        key = f"{agent_ix}/{user}"
        if key not in ids_by_row:
            with transaction(engine) as session:
                rows = session.execute(
                    select(Memory.id, Memory.embedding).where(
                        Memory.tenant_id == tenant,
                        Memory.agent_id == agents[agent_ix],
                        Memory.user_id == user,
                    )
                ).all()
            ids_by_row[key] = rows
        rows = ids_by_row[key]
        matrix = np.vstack([np.asarray(r[1], dtype=np.float32) for r in rows])
        exact = {rows[j][0] for j in np.argsort(-(matrix @ q))[:10]}
        got = {c.record.id for c in found if c.vector_rank is not None and c.vector_rank <= 10}
        recalls.append(len(exact & got) / len(exact))
        sizes.append(len(rows))
    return {
        "p50_ms": statistics.median(db_times),
        "p99_ms": statistics.quantiles(db_times, n=100)[98],
        "stage_p50_ms": statistics.median(times),
        "stage_p99_ms": statistics.quantiles(times, n=100)[98],
        "hnsw_recall_at_10": statistics.fmean(recalls),
        "filtered_rows_mean": statistics.fmean(sizes),
        "queries": len(times),
    }


def _throughput(engine: Engine, settings: Settings, tenant: uuid.UUID, n: int) -> dict[str, float]:
    import json as _json

    turns: list[str] = []
    for sample in _json.loads(LOCOMO.read_text()):
        conv = sample["conversation"]
        for key, value in conv.items():
            if key.startswith("session_") and isinstance(value, list):
                turns += [f"{t['speaker']}: {t['text']}" for t in value]
    texts = turns[:n]
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm-up"])
    t0 = time.perf_counter()
    embedder.embed(texts)
    raw = len(texts) / (time.perf_counter() - t0)
    agent = uuid.uuid4()
    with MemoryStore(engine, embedder, settings) as memory:
        t0 = time.perf_counter()
        for start in range(0, len(texts), 20):  # a session of 20 turns per call
            session_id = uuid.uuid4()
            memory.add_many(
                tenant,
                [
                    NewMemory(agent, t, user_id="writer", session_id=session_id)
                    for t in texts[start : start + 20]
                ],
            )
        stored = len(texts) / (time.perf_counter() - t0)
    return {"embedder_texts_per_s": raw, "insert_memories_per_s": stored, "texts": len(texts)}


def main() -> None:
    """Build the data set, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--insert-n", type=int, default=500)
    parser.add_argument(
        "--ef", default="", help="comma-separated hnsw.ef_search values (default: the setting)"
    )
    parser.add_argument(
        "--postgres-defaults",
        action="store_true",
        help="start the embedded server with PostgreSQL's defaults, not agentmill's settings",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/memory_latency.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    home = Path(tempfile.mkdtemp(prefix="agentmill-latency-"))
    pg = EmbeddedPostgres(home, settings={} if args.postgres_defaults else None)
    url = pg.start()
    engine = create_db_engine(url)
    settings = Settings(home=home, database_url=url)
    try:
        migrate.upgrade(engine)
        with transaction(engine) as session:
            tenant, _ = ensure_tenant(session, "bench")
        agents = [uuid.uuid4(), uuid.uuid4()]
        data = _synthetic(args.n, rng)
        load_s = _bulk_load(url, engine, tenant, agents, data)
        _time_cursors(engine)
        efs = [int(v) for v in args.ef.split(",") if v] or [settings.memory_ef_search]
        runs = {}
        for ef in efs:
            broad = _scenario(engine, tenant, agents, data, lambda r: "big", args.queries, ef, rng)
            narrow = _scenario(
                engine,
                tenant,
                agents,
                data,
                lambda r: f"small-{int(r.integers(0, 50))}",
                args.queries,
                ef,
                rng,
            )
            runs[ef] = (broad, narrow)
        writes = _throughput(engine, settings, tenant, args.insert_n)
    finally:
        engine.dispose()
        pg.stop()

    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"postgres settings: {pg.settings or 'PostgreSQL defaults'}")
    print(
        f"machine: {machine}; {args.n} memories (synthetic vectors, see docstring); "
        f"bulk load + HNSW build {load_s:.0f} s; {args.queries} queries per row after 20 warm-up"
    )
    print(
        f"{'search, agent + user filter':<28}{'ef':>5}{'rows':>7}{'db p50':>8}{'db p99':>8}"
        f"{'all p50':>9}{'all p99':>9}{'recall@10':>11}"
    )
    for ef, (broad, narrow) in runs.items():
        for name, row in (("big user (25% of rows)", broad), ("small user (1%)", narrow)):
            print(
                f"{name:<28}{ef:>5}{row['filtered_rows_mean']:>7.0f}{row['p50_ms']:>8.2f}"
                f"{row['p99_ms']:>8.2f}{row['stage_p50_ms']:>9.2f}{row['stage_p99_ms']:>9.2f}"
                f"{row['hnsw_recall_at_10']:>11.3f}"
            )
    ratio = writes["insert_memories_per_s"] / writes["embedder_texts_per_s"]
    print(
        f"embedder alone: {writes['embedder_texts_per_s']:.0f} texts/s; add_many with real "
        f"embeddings: {writes['insert_memories_per_s']:.1f} memories/s, {ratio:.2f}x the "
        f"embedder ({writes['texts']:.0f} LoCoMo turns, 20 per call)"
    )
    result = {
        "machine": machine,
        "postgres_settings": pg.settings,
        "n": args.n,
        "bulk_load_s": load_s,
        "search": {str(ef): {"big": b, "small": sm} for ef, (b, sm) in runs.items()},
        **writes,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    ef = efs[0]
    broad, narrow = runs[ef]
    print(
        f"summary n={args.n} ef_search={ef}: db p50 {broad['p50_ms']:.1f} / "
        f"{narrow['p50_ms']:.1f} ms, p99 {broad['p99_ms']:.1f} / {narrow['p99_ms']:.1f} ms "
        f"(big / small user), HNSW recall@10 {broad['hnsw_recall_at_10']:.3f} / "
        f"{narrow['hnsw_recall_at_10']:.3f}, insert {writes['insert_memories_per_s']:.1f} "
        f"memories/s vs embedder {writes['embedder_texts_per_s']:.0f} texts/s ({ratio:.2f}x)"
    )


if __name__ == "__main__":
    main()
