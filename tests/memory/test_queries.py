"""The repository on the real database: scoping, filters, iterative index scans, erasure."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select, text

from core.db import transaction
from core.errors import NotFound
from memory import candidates
from memory import queries as store
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.store import MemoryStore
from memory.tables import Memory
from tests.memory.conftest import erase_user, make_tenant

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _unit(rng: np.random.Generator) -> list[float]:
    v = rng.standard_normal(384)
    return list(v / np.linalg.norm(v))


def test_each_filter_narrows_the_listing(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    other_agent, sess = uuid.uuid4(), uuid.uuid4()
    memory.add_many(
        tenant,
        [
            NewMemory(
                agent,
                "Ann likes green tea",
                user_id="ann",
                kind="fact",
                created_at=T0,
                metadata={"topic": "drinks", "source": "chat"},
            ),
            NewMemory(
                agent,
                "Ann moved to Lisbon",
                user_id="ann",
                session_id=sess,
                created_at=T0 + timedelta(days=10),
                metadata={"topic": "places"},
            ),
            NewMemory(
                agent,
                "Bob plays the cello",
                user_id="bob",
                kind="fact",
                created_at=T0 + timedelta(days=20),
            ),
            NewMemory(
                other_agent,
                "The deploy runs on Fridays",
                kind="summary",
                created_at=T0 + timedelta(days=30),
            ),
        ],
    )

    def contents(**raw: object) -> set[str]:
        return {m.content for m in memory.list_memories(tenant, raw)}

    assert len(contents()) == 4
    assert contents(agent_id=other_agent) == {"The deploy runs on Fridays"}
    assert contents(user_id="ann") == {"Ann likes green tea", "Ann moved to Lisbon"}
    assert contents(session_id=sess) == {"Ann moved to Lisbon"}
    assert contents(kind="fact") == {"Ann likes green tea", "Bob plays the cello"}
    assert contents(kinds=["summary", "fact"], user_id="bob") == {"Bob plays the cello"}
    assert contents(created_after=T0 + timedelta(days=15)) == {
        "Bob plays the cello",
        "The deploy runs on Fridays",
    }
    assert contents(created_before=T0 + timedelta(days=10)) == {"Ann likes green tea"}
    assert contents(metadata={"topic": "drinks"}) == {"Ann likes green tea"}
    assert contents(metadata={"topic": "drinks", "source": "mail"}) == set()
    newest = memory.list_memories(tenant, limit=2)
    assert [m.content for m in newest] == ["The deploy runs on Fridays", "Bob plays the cello"]
    rest = memory.list_memories(tenant, before=(newest[1].created_at, newest[1].id))
    assert [m.content for m in rest][-1] == "Ann likes green tea"
    assert not {m.id for m in rest} & {m.id for m in newest}


def test_iterative_index_scan_returns_k_under_a_selective_filter(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    rng = np.random.default_rng(7)
    items = [
        NewMemory(agent, f"crowd note {i}", user_id="crowd", kind="fact", embedding=_unit(rng))
        for i in range(400)
    ] + [
        NewMemory(agent, f"rare note {i}", user_id="rare", kind="fact", embedding=_unit(rng))
        for i in range(12)
    ]
    memory.add_many(tenant, items)
    query = _unit(rng)
    where = MemoryFilter(agent_id=agent, user_id="rare")
    with engine.begin() as conn:  # leave only the HNSW index to serve the filtered ordering
        for index in ("ix_memories_scope", "ix_memories_tenant_user", "ix_memories_session"):
            conn.execute(text(f"DROP INDEX {index}"))
        conn.execute(text("ANALYZE memories"))
    plain = (
        select(Memory.id)
        .where(*store.conditions(tenant, where))
        .order_by(Memory.embedding.cosine_distance(query))
        .limit(10)
    )
    with transaction(engine) as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        session.execute(text("SET LOCAL hnsw.ef_search = 20"))
        without = session.execute(plain).all()
        found = candidates.search_candidates(
            session,
            tenant,
            where,
            query="note",
            embedding=query,
            depth=10,
            context_text_weight=0.5,
            ef_search=20,
            common_words="",
        )
    assert len(without) < 10  # a plain HNSW scan loses most filtered rows...
    by_vector = [c for c in found if c.vector_rank is not None]
    assert len(by_vector) == 10  # ...the iterative scan keeps going until it has k
    assert all(c.record.user_id == "rare" for c in found)


def test_delete_and_erase_leave_no_row_or_embedding(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    other_agent = uuid.uuid4()
    results = memory.add_many(
        tenant,
        [
            NewMemory(agent, "Carla's daughter is called Mia", user_id="carla", kind="fact"),
            NewMemory(agent, "Carla is allergic to nuts", user_id="carla", kind="fact"),
            NewMemory(other_agent, "Carla prefers email", user_id="carla", kind="fact"),
            NewMemory(agent, "Dan is a pilot", user_id="dan", kind="fact"),
        ],
    )
    memory.set_block(tenant, agent, "human", "Name: Carla", user_id="carla")
    memory.set_block(tenant, agent, "persona", "I am helpful.")
    memory.delete(tenant, results[0].id)
    with pytest.raises(NotFound):
        memory.delete(tenant, results[0].id)
    with pytest.raises(NotFound):
        memory.get(tenant, results[0].id)
    assert erase_user(engine, tenant, "carla", agent_id=agent) == 2  # a memory, the block
    assert erase_user(engine, tenant, "carla") == 1  # the other agent's memory
    with engine.connect() as conn:
        left = conn.execute(text("SELECT user_id, embedding IS NOT NULL FROM memories")).all()
        assert left == [("dan", True)]
        assert conn.scalar(text("SELECT count(*) FROM memory_blocks WHERE user_id = 'carla'")) == 0
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM memory_block_versions v JOIN memory_blocks b "
                    "ON b.id = v.block_id WHERE b.user_id = 'carla'"
                )
            )
            == 0
        )
    assert [b.label for b in memory.list_blocks(tenant, agent)] == ["persona"]
    assert memory.search(tenant, "Carla", where={"user_id": "carla"}) == []


def test_tenants_never_see_or_touch_each_others_rows(
    memory: MemoryStore, engine: Engine, agent: uuid.UUID
) -> None:
    """Property-style: random operations by three tenants against a model of who owns what."""
    rng = random.Random(1234)  # noqa: S311 (a seeded test, not cryptography)
    tenants = [make_tenant(engine, name) for name in ("t-a", "t-b", "t-c")]
    owned: dict[uuid.UUID, dict[uuid.UUID, str]] = {t: {} for t in tenants}
    subjects = ["the garden", "a trip to Oslo", "piano lessons", "the new job", "a red bike"]
    people = ["ann", "bob", "eve"]
    for step in range(70):
        tenant = rng.choice(tenants)
        others = [t for t in tenants if t != tenant]
        op = rng.choice(["add", "add", "search", "list", "delete", "delete_foreign", "erase"])
        if op == "add":
            user = rng.choice(people)
            content = f"{user} talked about {rng.choice(subjects)} (note {step})"
            result = memory.add(tenant, NewMemory(agent, content, user_id=user, kind="fact"))
            owned[tenant][result.id] = user
        elif op == "search":
            hits = memory.search(tenant, rng.choice(subjects), k=20)
            assert {h.memory.id for h in hits} <= set(owned[tenant])
        elif op == "list":
            listed = memory.list_memories(tenant, {"user_id": rng.choice(people)}, limit=1000)
            assert {m.id for m in listed} <= set(owned[tenant])
        elif op == "delete" and owned[tenant]:
            victim = rng.choice(sorted(owned[tenant]))
            memory.delete(tenant, victim)
            del owned[tenant][victim]
        elif op == "delete_foreign":
            foreign = [m for t in others for m in owned[t]]
            if foreign:
                victim = rng.choice(sorted(foreign))
                with pytest.raises(NotFound):
                    memory.delete(tenant, victim)
                with pytest.raises(NotFound):
                    memory.get(tenant, victim)
        elif op == "erase":
            user = rng.choice(people)
            gone = erase_user(engine, tenant, user)
            mine = [m for m, u in owned[tenant].items() if u == user]
            assert gone == len(mine)
            for m in mine:
                del owned[tenant][m]
        with engine.connect() as conn:  # the database matches the model after every step
            rows = conn.execute(text("SELECT tenant_id, id FROM memories")).all()
        actual: dict[uuid.UUID, set[uuid.UUID]] = {t: set() for t in tenants}
        for tenant_id, memory_id in rows:
            actual[tenant_id].add(memory_id)
        assert actual == {t: set(ids) for t, ids in owned.items()}, f"step {step} ({op})"
    assert sum(len(ids) for ids in owned.values()) > 0


def test_access_statistics_are_written_after_the_search(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    written = memory.add(tenant, NewMemory(agent, "Fiona keeps bees on her roof", kind="fact"))
    assert memory.get(tenant, written.id).access_count == 0
    memory.search(tenant, "bees")
    memory.search(tenant, "roof bees")
    memory.flush_access_stats()
    record = memory.get(tenant, written.id)
    assert record.access_count == 2
    assert record.last_accessed_at is not None


def test_the_background_writer_records_access_without_a_flush(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    written = memory.add(tenant, NewMemory(agent, "Gus repairs vintage radios", kind="fact"))
    memory.search(tenant, "radios")
    deadline = time.monotonic() + 10
    while memory.get(tenant, written.id).access_count == 0:
        assert time.monotonic() < deadline, "access statistics were never written"
        time.sleep(0.05)
    assert memory.get(tenant, written.id).access_count == 1
