"""Ranking: how the candidates of the three retrievers become one ordered list (pure).

    fused(m)  = sum over retrievers r of  w_r / (k0 + rank_r(m))        (reciprocal-rank fusion)
    score(m)  = fused(m) / fused_max
              + w_recency * 0.5 ** (age(m) / half_life)
              + w_importance * (importance(m) - 0.5)

`fused_max` (a memory ranked first by every retriever) scales the fusion to [0, 1] so the two
extra terms have a fixed meaning. Every default below was chosen by measurement on
../shared/data/locomo-dev.json (docs/memory.md has the table); `bench/memory_recall.py`
re-measures them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from memory.candidates import Candidate
from memory.records import SearchHit


@dataclass(frozen=True)
class RetrievalWeights:
    """Knobs of the ranking formula (see the module docstring)."""

    text: float = 1.0
    """Weight of the full-text retriever (ts_rank over the OR of the query's lexemes)."""
    vector: float = 0.5
    """Weight of the content-embedding retriever."""
    context: float = 0.7
    """Weight of the context-embedding retriever (the memory with its neighbouring turns)."""
    k0: float = 10.0
    """RRF constant: smaller trusts the top ranks more."""
    context_text_weight: float = 0.5
    """How much a word in a memory's context counts against a word in the memory (ts_rank's
    D weight; the memory itself is weight A = 1)."""
    recency: float = 0.0
    """Weight of exp-decay recency on created_at; 0 on the dev set, which asks about any time."""
    half_life_days: float = 30.0
    """Age at which the recency term halves."""
    importance: float = 0.0
    """Weight of (importance - 0.5); the dev set carries no importance, so it was not tuned."""
    depth: int = 50
    """Candidates the full-text retriever contributes (at least 3 x k is used)."""
    vector_depth: int = 30
    """Candidates each vector retriever contributes (at least 2 x k is used). An HNSW scan's
    cost grows with it, the full text's does not; 30 instead of 50-60 cost .001-.002 of
    recall@10 on the dev set (docs/memory.md, "Cheaper vectors")."""

    common_postings: int = 300
    """A query word that the table statistics place in more than this many memories (a user's
    name, "go") still counts in the full-text score but selects no candidates, so the
    retriever's work is bounded by the rarer words' postings. Chosen on the dev set, where it
    costs no recall against scoring every match (docs/memory.md, "Bounded full text")."""

    def candidates(self, k: int) -> int:
        """How deep the full-text retriever looks for a search of k results."""
        return min(max(self.depth, 3 * k), 500)

    def vector_candidates(self, k: int) -> int:
        """How deep each vector retriever looks for a search of k results."""
        return min(max(self.vector_depth, 2 * k), 500)


DEFAULT_WEIGHTS = RetrievalWeights()


def rank(
    candidates: Sequence[Candidate], k: int, now: datetime, weights: RetrievalWeights
) -> list[SearchHit]:
    """Score every candidate and return the best k, best first (ties: newer first)."""
    fused_max = (weights.text + weights.vector + weights.context) / (weights.k0 + 1) or 1.0
    scored = []
    for cand in candidates:
        fused = sum(
            weight / (weights.k0 + position)
            for weight, position in (
                (weights.text, cand.text_rank),
                (weights.vector, cand.vector_rank),
                (weights.context, cand.context_rank),
            )
            if position is not None
        )
        score = fused / fused_max
        if weights.recency:
            age_days = max((now - cand.record.created_at).total_seconds(), 0.0) / 86400
            score += weights.recency * 0.5 ** (age_days / weights.half_life_days)
        if weights.importance:
            score += weights.importance * (cand.record.importance - 0.5)
        scored.append((score, cand))
    scored.sort(key=lambda item: (-item[0], -item[1].record.created_at.timestamp()))
    return [
        SearchHit(
            memory=cand.record,
            score=score,
            vector_rank=cand.vector_rank,
            context_rank=cand.context_rank,
            text_rank=cand.text_rank,
        )
        for score, cand in scored[:k]
    ]
