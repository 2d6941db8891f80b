"""Retrieval quality on LoCoMo-format conversations, through the same `MemoryStore.search`
agents use, on a real embedded Postgres with pgvector.

Each conversation becomes one user of one agent: every turn a memory ("speaker: text", plus
the caption of a shared image), its session a session, its session date the memory's time.
Each question is searched with k = max(ks) among that user's memories; recall@k is the share
of the question's evidence turns in the top k. Prints a table, writes
bench/results/memory_recall.json, and ends with `recall@10 non-adversarial: 0.xxx`.

    .venv/bin/python bench/memory_recall.py [PATH] [--chunk N] [--text W --vector W ...]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from core import migrate
from core.config import Settings
from core.db import create_db_engine, transaction
from core.embedded_pg import EmbeddedPostgres
from core.tenants import ensure_tenant
from inference.embedder import SentenceTransformerEmbedder
from memory.records import NewMemory
from memory.retrieval import DEFAULT_WEIGHTS, RetrievalWeights
from memory.store import MemoryStore

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PATH = REPO.parent / "shared" / "data" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
_SESSION = re.compile(r"^session_(\d+)$")
_EVIDENCE = re.compile(r"D:?(\d+):0*(\d+)")


@dataclass
class Turn:
    """One turn of a conversation."""

    dia_id: str
    text: str


@dataclass
class Session:
    """One session: its number, date and turns in order."""

    number: int
    when: datetime | None
    turns: list[Turn]


@dataclass
class Question:
    """A question with its valid evidence turn ids."""

    text: str
    category: int
    evidence: set[str]
    answer: str = ""
    """The gold answer (empty for adversarial questions, which carry none)."""


@dataclass
class Conversation:
    """A LoCoMo sample."""

    sample_id: str
    sessions: list[Session]
    questions: list[Question] = field(default_factory=list)


def _when(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def load(path: Path) -> list[Conversation]:
    """Parse a LoCoMo-format file (see ../shared/data/README.md for its quirks)."""
    out = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        sessions = []
        for key, value in conv.items():
            match = _SESSION.match(key)
            if not match or not isinstance(value, list):
                continue
            turns = []
            for turn in value:
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [shares an image: {turn['blip_caption']}]"
                turns.append(Turn(turn["dia_id"], text))
            when = _when(str(conv.get(f"{key}_date_time", "")))
            sessions.append(Session(int(match.group(1)), when, turns))
        sessions.sort(key=lambda s: s.number)
        known = {t.dia_id for s in sessions for t in s.turns}
        questions = []
        for qa in sample["qa"]:
            evidence = set()
            for raw in qa.get("evidence", []):
                for part in re.split(r"[;,\s]+", raw):
                    m = _EVIDENCE.search(part)
                    if m and f"D{int(m.group(1))}:{int(m.group(2))}" in known:
                        evidence.add(f"D{int(m.group(1))}:{int(m.group(2))}")
            if evidence:
                answer = str(qa.get("answer", ""))
                questions.append(Question(qa["question"], int(qa["category"]), evidence, answer))
        out.append(Conversation(sample["sample_id"], sessions, questions))
    return out


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] if size else [items]


ABLATIONS: dict[str, Callable[[RetrievalWeights], RetrievalWeights]] = {
    "full text only": lambda w: replace(w, vector=0.0, context=0.0),
    "full text, memory words only": lambda w: replace(
        w, vector=0.0, context=0.0, context_text_weight=0.0
    ),
    "content vector only": lambda w: replace(w, text=0.0, context=0.0),
    "context vector only": lambda w: replace(w, text=0.0, vector=0.0),
    "both vectors, no full text": lambda w: replace(w, text=0.0),
    "full text + content vector": lambda w: replace(w, context=0.0),
    "equal weights, k0=60": lambda w: replace(w, text=1.0, vector=1.0, context=1.0, k0=60.0),
    "recency 0.05": lambda w: replace(w, recency=0.05),
    "recency 0.2": lambda w: replace(w, recency=0.2),
}
"""Weight variants `--ablations` measures on the same loaded store."""

Recall = dict[int, dict[int, list[float]]]


def store_conversation(
    memory: MemoryStore, tenant_id: uuid.UUID, agent_id: uuid.UUID, conv: Conversation, chunk: int
) -> tuple[dict[uuid.UUID, set[str]], int]:
    """Store a conversation's turns; return memory id -> turn ids, and the deduplicated count."""
    dia_of: dict[uuid.UUID, set[str]] = {}
    merged = 0
    for sess in conv.sessions:
        session_id = uuid.uuid4()
        base = sess.when or datetime.now(UTC)
        items = [
            NewMemory(
                agent_id=agent_id,
                user_id=conv.sample_id,
                session_id=session_id,
                content=turn.text,
                # Turns carry only their session's time; seconds keep their order.
                created_at=base + timedelta(seconds=i),
                metadata={"dia_id": turn.dia_id, "session": sess.number},
            )
            for i, turn in enumerate(sess.turns)
        ]
        for chunk_items, chunk_turns in zip(
            _chunks(items, chunk), _chunks(sess.turns, chunk), strict=True
        ):
            written = memory.add_many(tenant_id, chunk_items)
            for outcome, turn in zip(written, chunk_turns, strict=True):
                dia_of.setdefault(outcome.id, set()).add(turn.dia_id)
                merged += outcome.deduplicated
    return dia_of, merged


@contextmanager
def embedded_memory(prefix: str) -> Iterator[tuple[MemoryStore, Engine, uuid.UUID]]:
    """A `MemoryStore` with the real embedder on a fresh embedded Postgres (migrated, in a
    temporary home named by `prefix`), with its engine and the tenant's id."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    pg = EmbeddedPostgres(home)
    url = pg.start()
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
        with transaction(engine) as session:
            tenant_id, _ = ensure_tenant(session, "bench")
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm-up"])
        embedder.embed_query("warm-up")
        with MemoryStore(engine, embedder, Settings(home=home, database_url=url)) as memory:
            yield memory, engine, tenant_id
    finally:
        engine.dispose()
        pg.stop()


def store_all(
    memory: MemoryStore,
    engine: Engine,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    conversations: list[Conversation],
    chunk: int,
) -> tuple[list[tuple[Conversation, dict[uuid.UUID, set[str]]]], int]:
    """Store every conversation (`store_conversation`), then ANALYZE; return each with its
    memory id -> turn ids, and the deduplicated count."""
    loaded = []
    merged = 0
    for conv in conversations:
        dia_of, merged_here = store_conversation(memory, tenant_id, agent_id, conv, chunk)
        loaded.append((conv, dia_of))
        merged += merged_here
    # What autovacuum does soon after such a load: statistics, which the full-text
    # retriever reads to tell common words from rare ones (memory.words).
    with engine.begin() as conn:
        conn.execute(text("ANALYZE memories"))
    return loaded, merged


def _ask(
    memory: MemoryStore,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    loaded: list[tuple[Conversation, dict[uuid.UUID, set[str]]]],
    ks: list[int],
    weights: RetrievalWeights,
) -> tuple[Recall, list[float]]:
    """Search every question; return recall per category and k, and per-query times (ms)."""
    recall: Recall = {}
    times = []
    for conv, dia_of in loaded:
        last = max((s.when for s in conv.sessions if s.when), default=None)
        for question in conv.questions:
            t0 = time.perf_counter()
            hits = memory.search(
                tenant_id,
                question.text,
                k=max(ks),
                where={"agent_id": agent_id, "user_id": conv.sample_id},
                weights=weights,
                now=last,
            )
            times.append((time.perf_counter() - t0) * 1000)
            found = [dia_of.get(hit.memory.id, set()) for hit in hits]
            cat = recall.setdefault(question.category, {k: [] for k in ks})
            for k in ks:
                top: set[str] = set().union(*found[:k])
                cat[k].append(len(question.evidence & top) / len(question.evidence))
    return recall, times


def _mean(recall: Recall, cats: list[int], k: int) -> tuple[float, int]:
    values = [v for c in cats if c in recall for v in recall[c][k]]
    return (statistics.fmean(values) if values else float("nan")), len(values)


def main() -> None:
    """Load, ask, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--ks", default="1,5,10,20")
    parser.add_argument(
        "--chunk", type=int, default=0, help="turns per add_many call (0: a whole session)"
    )
    parser.add_argument(
        "--ablations", action="store_true", help="also measure the ABLATIONS weight variants"
    )
    for name in ("text", "vector", "context", "k0", "context_text_weight", "recency"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/memory_recall.json")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    overrides = {
        name: getattr(args, name)
        for name in ("text", "vector", "context", "k0", "context_text_weight", "recency")
        if getattr(args, name) is not None
    }
    weights = replace(DEFAULT_WEIGHTS, **overrides)
    conversations = load(args.path)

    agent_id = uuid.uuid4()
    ablations: dict[str, float] = {}
    with embedded_memory("agentmill-recall-") as (memory, engine, tenant_id):
        t0 = time.perf_counter()
        loaded, merged = store_all(memory, engine, tenant_id, agent_id, conversations, args.chunk)
        load_s = time.perf_counter() - t0
        recall, query_ms = _ask(memory, tenant_id, agent_id, loaded, ks, weights)
        if args.ablations:
            for name, change in ABLATIONS.items():
                variant, _ = _ask(memory, tenant_id, agent_id, loaded, [10], change(weights))
                ablations[name] = _mean(variant, [c for c in variant if c != 5], 10)[0]

    turns = sum(len(s.turns) for c in conversations for s in c.sessions)
    cats = sorted(recall)
    rows = [("all", cats), ("non-adversarial", [c for c in cats if c != 5])]
    rows += [(f"{c} {CATEGORIES.get(c, '?')}", [c]) for c in cats]
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}; file: {args.path.name}; {turns} turns ({merged} deduplicated)")
    print(f"weights: {weights}")
    print(f"{'questions':<20}{'n':>5}" + "".join(f"{'@' + str(k):>8}" for k in ks))
    table: dict[str, dict[str, float]] = {}
    for label, group in rows:
        values = [_mean(recall, group, k) for k in ks]
        table[label] = {"n": values[0][1]}
        table[label].update({f"recall@{k}": v for k, (v, _) in zip(ks, values, strict=True)})
        print(f"{label:<20}{values[0][1]:>5}" + "".join(f"{v:>8.3f}" for v, _ in values))
    for name, value in ablations.items():
        print(f"ablation {name:<36} recall@10 non-adversarial {value:.3f}")
    print(
        f"load {load_s:.1f} s ({turns / load_s:.1f} turns/s incl. embedding, chunk "
        f"{args.chunk or 'session'}); search p50 {statistics.median(query_ms):.1f} ms incl. "
        f"query embedding ({len(query_ms)} questions)"
    )
    result = {
        "machine": machine,
        "file": str(args.path),
        "chunk": args.chunk,
        "weights": asdict(weights),
        "turns": turns,
        "deduplicated": merged,
        "recall": table,
        "ablations_recall10_non_adversarial": ablations,
        "load_s": load_s,
        "search_ms_p50": statistics.median(query_ms),
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"recall@10 non-adversarial: {table['non-adversarial'].get('recall@10', float('nan')):.3f}"
    )


if __name__ == "__main__":
    main()
