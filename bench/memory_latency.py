"""Memory search latency at scale, HNSW recall against exact search, and write throughput.

One tenant holds N memories (default 100,000) over 2 agents. Per agent one "big" user owns
half its rows (25% of the table) and 50 "small" users share the rest (1% each).

Vectors are synthetic: random unit vectors scattered around 2,000 random centres (so
neighbourhoods exist, as with real embeddings). Texts are real conversation: each user's rows
are filled session by session with the turns of LoCoMo sessions (../shared/data, "speaker:
text"), each turn indexed with its neighbouring turns (2 before, 2 after) as the store's writer
does, and every query's text is a LoCoMo question. 100,000 memories repeat LoCoMo's 2,760
turns 36 times; so that a word is as rare as it would be in a natural corpus of that size
rather than 36 times as common, each session copy (and each question) is written in one of
SPELLINGS vocabularies, which differ in every word outside LoCoMo's 500 commonest (see
SPELLINGS). Text matters for latency: a real question shares some word (often a name) with
nearly every memory of its user once the neighbours are indexed, while the rarer words that
select full-text candidates are in few. (Random words from a Zipf vocabulary, which earlier
versions used, matched about 1% of a user's memories and hid the cost of the full text.)

Searches filter on agent and user and run the full candidate stage of `MemoryStore.search`
(both HNSW retrievers with iterative scans, the full-text retriever) with a precomputed query
vector (no embedding), timed over --queries queries after a warm-up. "db" is the time its
statements spend in the driver (sent, run, rows received); "all" adds SQLAlchemy building the
statement and decoding rows. HNSW recall@10 compares the content-vector retriever's top 10 with
exact search over the same filtered rows.

"e2e" is what a caller of `MemoryStore.search` waits for: validation, the query embedded by
the real model (all-MiniLM-L6-v2, warm), the candidate stage, ranking and noting the hits for
the access statistics. It is timed on its own queries (another question and vector), taking
turns with the others. The model's output is then swapped for the query's synthetic vector
(`_RealCostEmbedder`), so that the database part searches the same neighbourhoods as the "db"
column. "embed" is the model's share (`embed_query`: one thread, the int8 copy of the model
unless AGENTMILL_EMBEDDING_INT8_QUERIES is off); "fp32" is the same text through the model as
it is, also on one thread, as a query was embedded before int8 queries (the same-run baseline;
its time is not in "e2e").

By default the searches run twice on the same data and queries: first with the table-wide HNSW
indexes only, then after the scope indexer's first pass (memory.scope_indexes, with the
settings' threshold), which is what a worker does within its first interval; the two phases
give the scope indexes' ratio in one run. `--scope-indexes on|off` runs one phase.

Insert throughput uses real text (LoCoMo turns) and the real embedder, next to the embedder
alone on the same texts: into a new scope, then into the big user's (which has scope indexes
when they were built, so each write goes into more HNSW graphs). The embedded server runs with
agentmill's settings (core.embedded_pg.server_settings) unless --postgres-defaults.

    .venv/bin/python bench/memory_latency.py [--n 100000] [--queries 300] [--ef 60,40]
        [--scope-indexes both|on|off] [--postgres-defaults]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
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
from inference.embedder import SentenceTransformerEmbedder
from memory.candidates import Candidate
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.scope_indexes import ScopeIndexer
from memory.store import MemoryStore
from memory.tables import Memory

REPO = Path(__file__).resolve().parent.parent
LOCOMO = REPO.parent / "shared" / "data" / "locomo-dev.json"
DIM = 384
_HNSW = ("ix_memories_embedding", "ix_memories_context_embedding")


def _unit(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(
        np.float32
    )
    return out


def _locomo() -> tuple[list[list[str]], list[str]]:
    """LoCoMo's sessions (each a list of "speaker: text" turns) and questions."""
    sessions: list[list[str]] = []
    questions: list[str] = []
    for sample in json.loads(LOCOMO.read_text()):
        for key, value in sample["conversation"].items():
            if re.fullmatch(r"session_\d+", key) and isinstance(value, list):
                sessions.append([f"{t['speaker']}: {t['text']}" for t in value])
        questions += [qa["question"] for qa in sample["qa"]]
    return sessions, questions


SHARED_WORDS = 500
"""LoCoMo's most common words (by turns holding them) keep one spelling in every copy."""
SPELLINGS = 8
"""Spellings of every other word. N memories repeat LoCoMo's 2,760 turns N / 2,760 times; a
natural corpus that much larger has a larger vocabulary, not the same words that much more
often: by Heaps' law (vocabulary ~ size^0.5-0.6 for English) 6-9 times LoCoMo's 3,700 words
at 100,000 memories."""
_WORD = re.compile(r"[A-Za-z]+")


class _Spelling:
    """Rewrites a text in one of SPELLINGS vocabularies: words outside LoCoMo's SHARED_WORDS
    commonest get a suffix of the vocabulary (none for vocabulary 0)."""

    def __init__(self, turns: list[str]) -> None:
        counts: Counter[str] = Counter()
        for turn in turns:
            counts.update({w.lower() for w in _WORD.findall(turn)})
        self.shared = {w for w, _ in counts.most_common(SHARED_WORDS)}

    def __call__(self, text: str, vocabulary: int) -> str:
        suffix = "".join("qxzjv"[int(d)] for d in np.base_repr(vocabulary, 5)) if vocabulary else ""
        return _WORD.sub(lambda m: m[0] if m[0].lower() in self.shared else m[0] + suffix, text)


def _texts(
    users: np.ndarray[Any, Any], agent: np.ndarray[Any, Any], rng: np.random.Generator
) -> tuple[list[str], list[str], list[int], _Spelling]:
    """Content, context and session number of every row: each scope's rows, in order, are
    filled session by session with the turns of random LoCoMo sessions, each copy in one of
    SPELLINGS vocabularies; a turn's context is its neighbours in that session
    (memory.windows: 2 before, 2 after)."""
    sessions, _ = _locomo()
    spell = _Spelling([turn for session in sessions for turn in session])
    content = [""] * len(users)
    context = [""] * len(users)
    session_of = [0] * len(users)
    rows_of: dict[tuple[int, str], list[int]] = {}
    for i, (a, u) in enumerate(zip(agent.tolist(), users.tolist(), strict=True)):
        rows_of.setdefault((a, u), []).append(i)
    number = 0
    for rows in rows_of.values():
        at = 0
        while at < len(rows):
            vocabulary = int(rng.integers(0, SPELLINGS))
            picked = sessions[int(rng.integers(0, len(sessions)))][: len(rows) - at]
            turns = [spell(turn, vocabulary) for turn in picked]
            number += 1
            for j, turn in enumerate(turns):
                row = rows[at + j]
                content[row] = turn
                context[row] = "\n".join([*turns[max(j - 2, 0) : j], *turns[j + 1 : j + 3]])
                session_of[row] = number
            at += len(turns)
    return content, context, session_of, spell


def _synthetic(n: int, rng: np.random.Generator) -> dict[str, Any]:
    centres = _unit(rng.standard_normal((2000, DIM)))
    which = rng.integers(0, len(centres), n)
    vectors = _unit(centres[which] + rng.standard_normal((n, DIM)) * 0.06)
    context = _unit(vectors + rng.standard_normal((n, DIM)) * 0.03)
    agent = rng.integers(0, 2, n)
    big = rng.random(n) < 0.5
    small = rng.integers(0, 50, n)
    users = np.where(big, "big", np.char.add("small-", small.astype(str)))
    content, context_text, session_of, spell = _texts(users, agent, rng)
    return {
        "centres": centres,
        "vectors": vectors,
        "context": context,
        "content_text": content,
        "context_text": context_text,
        "session": session_of,
        "agent": agent,
        "users": users,
        "questions": _locomo()[1],
        "spell": spell,
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
            "COPY memories (id, tenant_id, agent_id, user_id, session_id, kind, content, context, "
            "embedding, context_embedding, created_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                [
                    "uuid",
                    "uuid",
                    "uuid",
                    "varchar",
                    "uuid",
                    "varchar",
                    "text",
                    "text",
                    "halfvec",
                    "halfvec",
                    "timestamptz",
                ]
            )
            session_ids: dict[int, uuid.UUID] = {}
            for i in range(len(data["vectors"])):
                session = session_ids.setdefault(data["session"][i], uuid.uuid4())
                copy.write_row(
                    (
                        uuid.uuid4(),
                        tenant,
                        agents[int(data["agent"][i])],
                        str(data["users"][i]),
                        session,
                        "episodic",
                        data["content_text"][i],
                        data["context_text"][i],
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


class _RealCostEmbedder:
    """The real embedder's work on each query (its time is recorded), answering with the
    synthetic vector set in `vector` so the search hits the synthetic data's neighbourhoods."""

    def __init__(self, real: SentenceTransformerEmbedder) -> None:
        self._real = real
        self.vector: np.ndarray[Any, Any] | None = None
        self.ms = 0.0
        self.fp32_ms = 0.0

    @property
    def dimension(self) -> int:
        """The real model's."""
        return self._real.dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """The real embedder's vectors (this benchmark's searches use `embed_query`)."""
        return self._real.embed(texts)

    def embed_query(self, text: str) -> np.ndarray[Any, Any]:
        """Embed for real, answer with the synthetic vector."""
        t0 = time.perf_counter()
        self._real.embed_query(text)
        self.ms = (time.perf_counter() - t0) * 1000
        # The same text through the full-precision model on one thread (a query's embedding
        # before int8 queries): the same-run baseline of the "embed" column.
        t0 = time.perf_counter()
        self._real.embed([text])
        self.fp32_ms = (time.perf_counter() - t0) * 1000
        assert self.vector is not None
        return self.vector.astype(np.float32)


def _search(
    store: MemoryStore, tenant: uuid.UUID, where: MemoryFilter, query: str, vector: list[float]
) -> tuple[float, float, list[Candidate]]:
    """The candidate stage of `MemoryStore.search` (without embedding the query): total and
    driver milliseconds, and the candidates."""
    _cursor_ms.clear()
    t0 = time.perf_counter()
    found = store.candidates(tenant, query, vector, k=10, where=where)
    return (time.perf_counter() - t0) * 1000, sum(_cursor_ms), found


def _search_e2e(
    store: MemoryStore,
    embedder: _RealCostEmbedder,
    tenant: uuid.UUID,
    where: MemoryFilter,
    query: str,
    vector: np.ndarray[Any, Any],
) -> tuple[float, float]:
    """`MemoryStore.search` as a caller sees it: total and embedding milliseconds."""
    embedder.vector = vector
    t0 = time.perf_counter()
    store.search(tenant, query, k=10, where=where)
    return (time.perf_counter() - t0) * 1000 - embedder.fp32_ms, embedder.ms


WARM_UP = 20
"""Searches per configuration before timing starts."""
USERS = ("big", "small")


def _measure(
    engine: Engine,
    stores: dict[int, tuple[MemoryStore, MemoryStore]],
    embedder: _RealCostEmbedder,
    tenant: uuid.UUID,
    agents: list[uuid.UUID],
    data: dict[str, Any],
    queries: int,
    rng: np.random.Generator,
) -> dict[tuple[int, str], dict[str, float]]:
    """Time `queries` searches per (ef_search, big or small user), the configurations taking
    turns in a random order query by query, so that load from elsewhere falls on all alike;
    each turn is a candidate-stage search and an end-to-end one of another query.
    `stores` holds per ef_search value (its setting) a store with the real embedder and one
    with `embedder`."""
    configs = [(ef, user) for ef in stores for user in USERS]
    samples: dict[tuple[int, str], dict[str, list[float]]] = {
        c: {
            "all": [],
            "db": [],
            "recall": [],
            "rows": [],
            "e2e": [],
            "embed": [],
            "embed_fp32": [],
        }
        for c in configs
    }

    def pick(kind: str) -> tuple[int, str, str, np.ndarray[Any, Any]]:
        agent_ix = int(rng.integers(0, 2))
        user = "big" if kind == "big" else f"small-{int(rng.integers(0, 50))}"
        centre = data["centres"][int(rng.integers(0, len(data["centres"])))]
        q = _unit((centre + rng.standard_normal(DIM) * 0.06)[None, :])[0]
        question = data["spell"](
            data["questions"][int(rng.integers(0, len(data["questions"])))],
            int(rng.integers(0, SPELLINGS)),
        )
        return agent_ix, user, question, q

    exact_of: dict[tuple[int, str], tuple[list[uuid.UUID], np.ndarray[Any, Any]]] = {}
    for i in range(WARM_UP + queries):
        for c in rng.permutation(len(configs)):
            ef, kind = configs[int(c)]
            agent_ix, user, question, q = pick(kind)
            where = MemoryFilter(agent_id=agents[agent_ix], user_id=user)
            ms, db_ms, found = _search(stores[ef][0], tenant, where, question, q.tolist())
            e2e_agent, e2e_user, e2e_question, e2e_q = pick(kind)
            e2e_where = MemoryFilter(agent_id=agents[e2e_agent], user_id=e2e_user)
            e2e_ms, embed_ms = _search_e2e(
                stores[ef][1], embedder, tenant, e2e_where, e2e_question, e2e_q
            )
            if i < WARM_UP:
                continue
            if (agent_ix, user) not in exact_of:
                with transaction(engine) as session:
                    rows = session.execute(
                        select(Memory.id, Memory.embedding).where(
                            Memory.tenant_id == tenant,
                            Memory.agent_id == agents[agent_ix],
                            Memory.user_id == user,
                        )
                    ).all()
                matrix = np.vstack([np.asarray(r[1], dtype=np.float32) for r in rows])
                exact_of[(agent_ix, user)] = ([r[0] for r in rows], matrix)
            ids, matrix = exact_of[(agent_ix, user)]
            exact = {ids[j] for j in np.argsort(-(matrix @ q))[:10]}
            got = {c.record.id for c in found if c.vector_rank is not None and c.vector_rank <= 10}
            row = samples[(ef, kind)]
            row["all"].append(ms)
            row["db"].append(db_ms)
            row["recall"].append(len(exact & got) / len(exact))
            row["rows"].append(len(ids))
            row["e2e"].append(e2e_ms)
            row["embed"].append(embed_ms)
            row["embed_fp32"].append(embedder.fp32_ms)
    return {
        c: {
            "p50_ms": statistics.median(s["db"]),
            "p99_ms": statistics.quantiles(s["db"], n=100)[98],
            "stage_p50_ms": statistics.median(s["all"]),
            "stage_p99_ms": statistics.quantiles(s["all"], n=100)[98],
            "e2e_p50_ms": statistics.median(s["e2e"]),
            "e2e_p99_ms": statistics.quantiles(s["e2e"], n=100)[98],
            "embed_p50_ms": statistics.median(s["embed"]),
            "embed_p99_ms": statistics.quantiles(s["embed"], n=100)[98],
            "embed_fp32_p50_ms": statistics.median(s["embed_fp32"]),
            "embed_fp32_p99_ms": statistics.quantiles(s["embed_fp32"], n=100)[98],
            "hnsw_recall_at_10": statistics.fmean(s["recall"]),
            "filtered_rows_mean": statistics.fmean(s["rows"]),
            "queries": len(s["db"]),
        }
        for c, s in samples.items()
    }


def _throughput(
    engine: Engine,
    embedder: SentenceTransformerEmbedder,
    settings: Settings,
    tenant: uuid.UUID,
    n: int,
    big_agent: uuid.UUID,
) -> dict[str, float]:
    """The embedder alone, then `add_many` of the same texts into a new scope and into the big
    user's (which has scope indexes when they were built: more HNSW graphs to insert into)."""
    turns = [turn for session in _locomo()[0] for turn in session]
    texts = turns[:n]
    t0 = time.perf_counter()
    embedder.embed(texts)
    raw = len(texts) / (time.perf_counter() - t0)
    rates = {}
    with MemoryStore(engine, embedder, settings) as memory:
        for name, agent, user in (("new", uuid.uuid4(), "writer"), ("big", big_agent, "big")):
            t0 = time.perf_counter()
            for start in range(0, len(texts), 20):  # a session of 20 turns per call
                session_id = uuid.uuid4()
                memory.add_many(
                    tenant,
                    [
                        NewMemory(agent, t, user_id=user, session_id=session_id)
                        for t in texts[start : start + 20]
                    ],
                )
            rates[name] = len(texts) / (time.perf_counter() - t0)
    return {
        "embedder_texts_per_s": raw,
        "insert_memories_per_s": rates["new"],
        "insert_big_scope_memories_per_s": rates["big"],
        "texts": len(texts),
    }


def _build_scope_indexes(engine: Engine, settings: Settings) -> tuple[float, list[str]]:
    """What a worker's scope indexer does on its first pass over the loaded table."""
    t0 = time.perf_counter()
    changes = ScopeIndexer(
        engine,
        min_rows=settings.memory_scope_index_min_rows,
        max_scopes=settings.memory_scope_index_max,
    ).run_once()
    return time.perf_counter() - t0, changes.created


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
    parser.add_argument(
        "--scope-indexes",
        choices=("both", "on", "off"),
        default="both",
        help="measure with the table-wide HNSW indexes only (off), after the scope indexer's "
        "first pass (on), or both in turn on the same data and queries (default)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/memory_latency.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    home = Path(tempfile.mkdtemp(prefix="agentmill-latency-"))
    pg = EmbeddedPostgres(home, settings={} if args.postgres_defaults else None)
    url = pg.start()
    engine = create_db_engine(url)
    settings = Settings(home=home, database_url=url)
    phases = {"both": ["off", "on"], "on": ["on"], "off": ["off"]}[args.scope_indexes]
    runs: dict[str, dict[tuple[int, str], dict[str, float]]] = {}
    built: tuple[float, list[str]] = (0.0, [])
    try:
        migrate.upgrade(engine)
        with transaction(engine) as session:
            tenant, _ = ensure_tenant(session, "bench")
        agents = [uuid.uuid4(), uuid.uuid4()]
        data = _synthetic(args.n, rng)
        load_s = _bulk_load(url, engine, tenant, agents, data)
        _time_cursors(engine)
        efs = [int(v) for v in args.ef.split(",") if v] or [settings.memory_ef_search]
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm-up"])
        embedder.embed_query("warm-up")
        real_cost = _RealCostEmbedder(embedder)
        stores = {}
        for ef in efs:
            tuned = settings.model_copy(update={"memory_ef_search": ef})
            stores[ef] = (
                MemoryStore(engine, embedder, tuned),
                MemoryStore(engine, real_cost, tuned),
            )
        for phase in phases:
            if phase == "on":
                built = _build_scope_indexes(engine, settings)
            # The same queries in both phases.
            runs[phase] = _measure(
                engine,
                stores,
                real_cost,
                tenant,
                agents,
                data,
                args.queries,
                np.random.default_rng(1),
            )
        for pair in stores.values():
            for store in pair:
                store.close()
        writes = _throughput(engine, embedder, settings, tenant, args.insert_n, agents[0])
    finally:
        engine.dispose()
        pg.stop()

    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"postgres settings: {pg.settings or 'PostgreSQL defaults'}")
    print(
        f"machine: {machine}; {args.n} memories (synthetic vectors, see docstring); "
        f"bulk load + HNSW build {load_s:.0f} s; {args.queries} queries per row after "
        f"{WARM_UP} warm-up, the rows of a phase taking turns query by query"
    )
    if "on" in runs:
        print(
            f"scope indexer (min rows {settings.memory_scope_index_min_rows}): built "
            f"{len(built[1])} indexes in {built[0]:.0f} s"
        )
    print(
        f"{'search, agent + user filter':<28}{'scope idx':>10}{'ef':>5}{'rows':>7}{'db p50':>8}"
        f"{'db p99':>8}{'all p50':>9}{'all p99':>9}{'e2e p50':>9}{'e2e p99':>9}"
        f"{'embed p50/p99':>15}{'fp32 p50/p99':>13}{'recall@10':>11}"
    )
    names = {"big": "big user (25% of rows)", "small": "small user (1%)"}
    for phase, phase_runs in runs.items():
        for (ef, user), row in phase_runs.items():
            print(
                f"{names[user]:<28}{phase:>10}{ef:>5}{row['filtered_rows_mean']:>7.0f}"
                f"{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}{row['stage_p50_ms']:>9.2f}"
                f"{row['stage_p99_ms']:>9.2f}{row['e2e_p50_ms']:>9.2f}{row['e2e_p99_ms']:>9.2f}"
                f"{row['embed_p50_ms']:>8.2f}/{row['embed_p99_ms']:<6.1f}"
                f"{row['embed_fp32_p50_ms']:>6.2f}/{row['embed_fp32_p99_ms']:<6.1f}"
                f"{row['hnsw_recall_at_10']:>11.3f}"
            )
    ratio = writes["insert_memories_per_s"] / writes["embedder_texts_per_s"]
    big_ratio = writes["insert_big_scope_memories_per_s"] / writes["embedder_texts_per_s"]
    print(
        f"embedder alone: {writes['embedder_texts_per_s']:.0f} texts/s; add_many with real "
        f"embeddings ({writes['texts']:.0f} LoCoMo turns, 20 per call): new scope "
        f"{writes['insert_memories_per_s']:.1f} memories/s ({ratio:.2f}x the embedder), the big "
        f"user's scope {writes['insert_big_scope_memories_per_s']:.1f} ({big_ratio:.2f}x)"
    )
    result = {
        "machine": machine,
        "postgres_settings": pg.settings,
        "n": args.n,
        "bulk_load_s": load_s,
        "scope_indexes_built": built[1],
        "scope_index_build_s": built[0],
        "search": {
            phase: {str(ef): {user: phase_runs[(ef, user)] for user in USERS} for ef in efs}
            for phase, phase_runs in runs.items()
        },
        **writes,
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    ef, last = efs[0], runs[phases[-1]]
    broad, narrow = last[(ef, "big")], last[(ef, "small")]
    versus = ""
    if len(runs) == 2:
        base = runs["off"]
        versus = (
            f" (table-wide indexes only: {base[(ef, 'big')]['p50_ms']:.1f} / "
            f"{base[(ef, 'small')]['p50_ms']:.1f} ms p50)"
        )
    print(
        f"summary n={args.n} ef_search={ef} scope indexes {phases[-1]}: db p50 "
        f"{broad['p50_ms']:.1f} / {narrow['p50_ms']:.1f} ms, p99 {broad['p99_ms']:.1f} / "
        f"{narrow['p99_ms']:.1f} ms (big / small user){versus}; end to end incl. embedding p50 "
        f"{broad['e2e_p50_ms']:.1f} / {narrow['e2e_p50_ms']:.1f} ms, p99 "
        f"{broad['e2e_p99_ms']:.1f} / {narrow['e2e_p99_ms']:.1f} ms; HNSW recall@10 "
        f"{broad['hnsw_recall_at_10']:.3f} / {narrow['hnsw_recall_at_10']:.3f}, insert "
        f"{writes['insert_memories_per_s']:.1f} memories/s vs embedder "
        f"{writes['embedder_texts_per_s']:.0f} texts/s ({ratio:.2f}x)"
    )


if __name__ == "__main__":
    main()
