"""The ranking formula, on hand-made candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from memory.candidates import Candidate
from memory.records import MemoryRecord
from memory.retrieval import RetrievalWeights, rank

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _cand(
    content: str,
    *,
    vector: int | None = None,
    context: int | None = None,
    text: int | None = None,
    age_days: float = 0.0,
    importance: float = 0.5,
) -> Candidate:
    created = NOW - timedelta(days=age_days)
    record = MemoryRecord(
        id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        user_id=None,
        session_id=None,
        kind="fact",
        content=content,
        importance=importance,
        metadata={},
        created_at=created,
        updated_at=created,
        last_accessed_at=None,
        access_count=0,
        source_run_id=None,
        source_message_id=None,
    )
    return Candidate(record=record, vector_rank=vector, context_rank=context, text_rank=text)


def test_agreement_between_retrievers_beats_one_first_place() -> None:
    both = _cand("both", vector=2, context=2, text=2)
    one = _cand("one", text=1)
    hits = rank([one, both], k=2, now=NOW, weights=RetrievalWeights())
    assert [h.memory.content for h in hits] == ["both", "one"]
    assert hits[0].score <= 1.0
    assert (hits[0].vector_rank, hits[0].context_rank, hits[0].text_rank) == (2, 2, 2)


def test_first_everywhere_scores_one_and_k_truncates() -> None:
    top = _cand("top", vector=1, context=1, text=1)
    hits = rank(
        [_cand("x", text=5), top, _cand("y", vector=9)], k=1, now=NOW, weights=RetrievalWeights()
    )
    assert len(hits) == 1
    assert hits[0].memory.content == "top"
    assert abs(hits[0].score - 1.0) < 1e-9


def test_recency_and_importance_break_otherwise_equal_ranks() -> None:
    old = _cand("old", text=3, age_days=90)
    new = _cand("new", text=3, age_days=1)
    assert rank([old, new], 2, NOW, RetrievalWeights(recency=0.1))[0].memory.content == "new"
    low = _cand("low", text=3, importance=0.1)
    high = _cand("high", text=3, importance=0.9)
    weights = RetrievalWeights(importance=0.1)
    assert rank([low, high], 2, NOW, weights)[0].memory.content == "high"


def test_zero_weight_switches_a_retriever_off() -> None:
    by_vector = _cand("vector", vector=1)
    by_text = _cand("text", text=1)
    hits = rank([by_vector, by_text], 2, NOW, RetrievalWeights(text=0.0, context=0.0))
    assert hits[0].memory.content == "vector"
    assert hits[1].score == 0.0


def test_depth_grows_with_k() -> None:
    assert RetrievalWeights(depth=50).candidates(10) == 50
    assert RetrievalWeights(depth=50).candidates(40) == 120
