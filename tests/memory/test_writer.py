"""The write path: context vectors from neighbours, deduplication decisions, round trips."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlalchemy import Engine, event

from core.config import Settings
from memory import queries as store
from memory import writer
from memory.embedder import HashingEmbedder
from memory.records import NewMemory
from memory.store import MemoryStore

AGENT = uuid.uuid4()


def _unit(v: Any) -> np.ndarray[Any, Any]:
    out: np.ndarray[Any, Any] = np.asarray(v, dtype=np.float32) / np.linalg.norm(v)
    return out


def test_a_turns_context_vector_is_the_mean_of_its_window() -> None:
    session = uuid.uuid4()
    turns = [NewMemory(AGENT, t, session_id=session) for t in ("b one", "b two", "b three")]
    embedded = writer.embed(HashingEmbedder(), turns)
    old = store.StoredTurn("s earlier", list(_unit(np.arange(384) + 1.0)))
    pending = writer.plan(turns, embedded, {session: [old]})
    first, second, third = pending
    assert first.context == "s earlier\nb two\nb three"
    assert second.context == "s earlier\nb one\nb three"  # two before, one after
    assert third.context == "b one\nb two"
    expected = _unit(
        embedded.content[1] + embedded.content[0] + embedded.content[2] + np.asarray(old.embedding)
    )
    assert np.allclose(second.context_embedding, expected, atol=1e-6)
    # The model ran once per turn, never over window texts.
    assert len(embedded.content) == 3
    assert embedded.given_context == {}


def test_memories_without_neighbours_keep_their_own_vector_or_their_given_context() -> None:
    items = [
        NewMemory(AGENT, "a fact", kind="fact"),
        NewMemory(AGENT, "alone in its session", session_id=uuid.uuid4()),
        NewMemory(AGENT, "a fact with context", kind="fact", context="said at the lake"),
    ]
    embedded = writer.embed(HashingEmbedder(), items)
    fact, alone, given = writer.plan(items, embedded, {})
    assert np.array_equal(fact.context_embedding, fact.embedding)
    assert fact.context == ""
    assert np.array_equal(alone.context_embedding, alone.embedding)
    assert alone.context == ""
    assert given.context == "said at the lake"
    expected = HashingEmbedder().embed(["a fact with context\nsaid at the lake"])[0]
    assert np.allclose(given.context_embedding, expected)


def test_deduplication_prefers_a_batch_twin_then_a_stored_one() -> None:
    items = [
        NewMemory(AGENT, "Jo owns a canoe", kind="fact", metadata={"a": 1}, importance=0.2),
        NewMemory(AGENT, "Jo owns a canoe", kind="fact", metadata={"b": 2}, importance=0.1),
        NewMemory(AGENT, "Ann plays chess", kind="fact"),
        NewMemory(AGENT, "Ann plays chess", kind="summary"),  # another scope
    ]
    pending = writer.plan(items, writer.embed(HashingEmbedder(), items), {})
    stored_chess = uuid.uuid4()
    kept, merges = writer.deduplicate(pending, [None, None, stored_chess, None], 0.95)
    results = [p.result for p in pending]
    assert results[1] is not None
    assert results[0] is not None
    assert results[1].id == results[0].id
    assert results[1].deduplicated
    assert kept[0].item.metadata == {"a": 1, "b": 2}
    assert kept[0].item.importance == 0.2
    assert merges == [(stored_chess, pending[2])]
    assert [p.item.kind for p in kept] == ["fact", "summary"]


def test_a_batch_costs_the_same_few_statements_whatever_its_size(
    engine: Engine, memory_settings: Settings, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split(None, 1)[0])

    def turns(session: uuid.UUID, n: int) -> list[NewMemory]:
        return [NewMemory(agent, f"turn {i} of {session}", session_id=session) for i in range(n)]

    session = uuid.uuid4()
    event.listen(engine, "before_cursor_execute", count)
    try:
        with MemoryStore(engine, HashingEmbedder(), memory_settings) as memory:
            statements.clear()  # the store's model check (memory.model_record), once
            memory.add_many(tenant, turns(session, 3))
            # The erasure locks and tombstones (memory.erasure), the session's earlier turns,
            # one duplicate lookup (one scope), one INSERT.
            assert statements == ["SELECT"] * 4 + ["INSERT"]
            statements.clear()
            memory.add_many(tenant, turns(uuid.uuid4(), 40))
            assert statements == ["SELECT"] * 4 + ["INSERT"]
            statements.clear()
            again = memory.add_many(tenant, turns(session, 3))
            assert all(r.deduplicated for r in again)
            assert statements == ["SELECT"] * 4 + ["UPDATE"]  # one executemany
    finally:
        event.remove(engine, "before_cursor_execute", count)
