"""Dedicated vector indexes per large scope, on the real database: which scopes get them, that
the planner uses them for exactly their scope, and that they go when no longer wanted."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from core.db import create_db_engine, transaction
from memory import candidates, scope_indexes
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.scope_indexes import Scope, ScopeIndexer
from memory.store import MemoryStore
from tests.memory.conftest import erase_user, make_tenant

MIN_ROWS = 100


def _unit(rng: np.random.Generator) -> list[float]:
    v = rng.standard_normal(384)
    return list(v / np.linalg.norm(v))


def _fill(
    memory: MemoryStore, tenant: uuid.UUID, agent: uuid.UUID, user: str, n: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    memory.add_many(
        tenant,
        [
            NewMemory(agent, f"{user} note {i}", user_id=user, kind="fact", embedding=_unit(rng))
            for i in range(n)
        ],
    )


def _analyze(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("ANALYZE memories"))


def _indexes(engine: Engine) -> dict[str, scope_indexes.ScopeIndex]:
    with engine.connect() as conn:
        return {i.name: i for i in scope_indexes.existing_indexes(conn)}


def _vector_indexes_used(engine: Engine, tenant: uuid.UUID, where: MemoryFilter) -> set[str]:
    """The indexes the candidate statement's vector retrievers scan, with the plan forced onto
    an ordered index scan (at test sizes an exact sort is cheaper, and would be chosen)."""
    captured: list[tuple[str, object]] = []
    with transaction(engine) as session:
        session.execute(text("SET LOCAL enable_sort = off"))
        session.execute(text("SET LOCAL enable_seqscan = off"))
        conn = session.connection()

        def capture(*args: object) -> None:
            captured.append((str(args[2]), args[3]))

        event.listen(conn, "before_cursor_execute", capture)
        candidates.search_candidates(
            session,
            tenant,
            where,
            query="note",
            embedding=_unit(np.random.default_rng(99)),
            depth=10,
            context_text_weight=0.5,
            ef_search=40,
            common_words="",
        )
        event.remove(conn, "before_cursor_execute", capture)
        statement, params = captured[-1]
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("EXPLAIN " + statement, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    used = set()
    for line in plan.splitlines():
        if "Index Scan using " in line:
            used.add(line.split("Index Scan using ")[1].split()[0])
    return used - {"memories_pkey"}  # the join that fetches the candidates' rows


@pytest.fixture
def indexer(engine: Engine) -> ScopeIndexer:
    """An indexer with a threshold small enough for test data."""
    return ScopeIndexer(engine, min_rows=MIN_ROWS, max_scopes=10)


def test_large_scopes_get_indexes_the_planner_uses_for_them_alone(
    memory: MemoryStore,
    engine: Engine,
    tenant: uuid.UUID,
    agent: uuid.UUID,
    indexer: ScopeIndexer,
) -> None:
    _fill(memory, tenant, agent, "big", 120, seed=1)
    _fill(memory, tenant, agent, "o'brien", 8, seed=2)
    _fill(memory, tenant, uuid.uuid4(), "big", 60, seed=10)  # another agent, under the threshold
    _analyze(engine)

    changes = indexer.run_once()

    agent_scope, user_scope = Scope(tenant, agent), Scope(tenant, agent, "big")
    expected = {*agent_scope.index_names().values(), *user_scope.index_names().values()}
    assert set(changes.created) == expected
    found = _indexes(engine)
    assert set(found) == expected
    assert all(i.valid for i in found.values())
    assert {i.scope for i in found.values()} == {agent_scope, user_scope}
    # The user's own (smaller) graph serves the user's search; the agent's serves the agent's.
    big = _vector_indexes_used(engine, tenant, MemoryFilter(agent_id=agent, user_id="big"))
    assert big == set(user_scope.index_names().values())
    everyone = _vector_indexes_used(engine, tenant, MemoryFilter(agent_id=agent))
    assert everyone == set(agent_scope.index_names().values())
    # Nothing to do the second time.
    again = indexer.run_once()
    assert (again.created, again.dropped) == ([], [])


def test_another_tenant_never_uses_a_scope_index(
    memory: MemoryStore,
    engine: Engine,
    tenant: uuid.UUID,
    agent: uuid.UUID,
    indexer: ScopeIndexer,
) -> None:
    other = make_tenant(engine, "globex")
    _fill(memory, tenant, agent, "o'brien", 120, seed=3)  # a quote in the predicate's literal
    _fill(memory, other, agent, "o'brien", 20, seed=4)  # the same agent and user ids
    _analyze(engine)

    indexer.run_once()

    assert {i.scope for i in _indexes(engine).values()} == {
        Scope(tenant, agent),
        Scope(tenant, agent, "o'brien"),
    }
    used = _vector_indexes_used(engine, other, MemoryFilter(agent_id=agent, user_id="o'brien"))
    assert used == {"ix_memories_embedding", "ix_memories_context_embedding"}
    mine = _vector_indexes_used(engine, tenant, MemoryFilter(agent_id=agent, user_id="o'brien"))
    assert mine == set(Scope(tenant, agent, "o'brien").index_names().values())


def test_indexes_go_when_the_scope_shrinks_or_the_feature_is_off(
    memory: MemoryStore,
    engine: Engine,
    tenant: uuid.UUID,
    agent: uuid.UUID,
    indexer: ScopeIndexer,
) -> None:
    _fill(memory, tenant, agent, "big", 120, seed=5)
    _fill(memory, tenant, agent, "steady", 70, seed=6)
    _analyze(engine)
    indexer.run_once()
    assert len(_indexes(engine)) == 4  # the agent (190) and "big" (120); "steady" is under 100

    erase_user(engine, tenant, "big", agent_id=agent)
    changes = indexer.run_once()  # stale statistics still list "big": the count decides
    user_names = set(Scope(tenant, agent, "big").index_names().values())
    assert set(changes.dropped) == user_names
    # The agent has 70 memories left: under the threshold but not under half of it.
    assert {i.scope for i in _indexes(engine).values()} == {Scope(tenant, agent)}

    off = ScopeIndexer(engine, min_rows=0, max_scopes=10).run_once()
    assert len(off.dropped) == 2
    assert _indexes(engine) == {}


def test_the_cap_keeps_the_largest_scopes(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    _fill(memory, tenant, agent, "big", 150, seed=7)
    _fill(memory, tenant, agent, "bigger", 200, seed=8)
    _analyze(engine)

    ScopeIndexer(engine, min_rows=MIN_ROWS, max_scopes=2).run_once()

    assert {i.scope for i in _indexes(engine).values()} == {
        Scope(tenant, agent),
        Scope(tenant, agent, "bigger"),
    }


def test_orphans_and_interrupted_builds_are_dropped_and_rebuilt(
    memory: MemoryStore,
    engine: Engine,
    tenant: uuid.UUID,
    agent: uuid.UUID,
    indexer: ScopeIndexer,
) -> None:
    _fill(memory, tenant, agent, "big", 120, seed=9)
    _analyze(engine)
    indexer.run_once()
    broken = Scope(tenant, agent, "big").index_names()["embedding"]
    orphan = scope_indexes.PREFIX + "u_orphan_e"
    with engine.begin() as conn:
        # What a worker killed during CREATE INDEX CONCURRENTLY leaves: an invalid index, or
        # one without its comment.
        conn.execute(
            text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = CAST(:n AS regclass)"),
            {"n": broken},
        )
        conn.execute(text(f"CREATE INDEX {orphan} ON memories (seq)"))

    changes = indexer.run_once()

    assert set(changes.dropped) == {broken, orphan}
    assert changes.created == [broken]
    assert all(i.valid for i in _indexes(engine).values())
    assert orphan not in _indexes(engine)


def test_a_second_indexer_leaves_the_work_to_the_first(
    engine: Engine, database_url: str, indexer: ScopeIndexer
) -> None:
    url = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (scope_indexes._LOCK_ID,))
        assert indexer.run_once().skipped
    assert not indexer.run_once().skipped


def test_scope_comments_round_trip() -> None:
    scope = Scope(uuid.uuid4(), uuid.uuid4(), 'quote " and \\ slash')
    assert Scope.from_comment(scope.comment()) == scope
    assert Scope.from_comment(Scope(scope.tenant_id, scope.agent_id).comment()) == Scope(
        scope.tenant_id, scope.agent_id
    )
    assert Scope.from_comment(None) is None
    assert Scope.from_comment("{}") is None
    assert Scope.from_comment("not json") is None
    assert len(scope.index_names()["context_embedding"]) <= 63  # Postgres' identifier limit


def test_the_table_owner_needs_no_superuser_rights(
    memory: MemoryStore, engine: Engine, database_url: str, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    """An external database's role owns the tables it migrated, and may create in their schema,
    and nothing more: the indexer reads the statistics through pg_stats_ext (the catalog
    behind it is superuser-only)."""
    _fill(memory, tenant, agent, "big", 120, seed=11)
    _analyze(engine)
    role = f"owner_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER'))
        conn.execute(text(f'ALTER TABLE memories OWNER TO "{role}"'))
        conn.execute(text(f'GRANT CREATE ON SCHEMA public TO "{role}"'))
    owner = create_db_engine(make_url(database_url).set(username=role).render_as_string(False))
    try:
        changes = ScopeIndexer(owner, min_rows=MIN_ROWS, max_scopes=10).run_once()
        assert len(changes.created) == 4
    finally:
        owner.dispose()
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE memories OWNER TO CURRENT_USER"))
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


def test_slots_go_round_by_round_between_tenants() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    agent = uuid.uuid4()
    big = [(Scope(a, agent, f"u{i}"), 1000.0 - i) for i in range(5)]
    small = [(Scope(b, agent, "x"), 10.0), (Scope(b, agent, "y"), 5.0)]
    order = scope_indexes.fair_order([*big, *small], per_tenant=3)
    assert order == [big[0][0], small[0][0], big[1][0], small[1][0], big[2][0]]
    assert scope_indexes.fair_order(big, per_tenant=0) == []


def test_one_tenant_cannot_take_another_tenants_slot(
    memory: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    other = make_tenant(engine, "other")
    other_agent = uuid.uuid4()
    _fill(memory, tenant, agent, "big", 300, seed=1)
    _fill(memory, tenant, agent, "bigger", 400, seed=2)
    _fill(memory, other, other_agent, "modest", 120, seed=3)
    _analyze(engine)

    # Two slots: by size alone tenant's agent (700) and "bigger" (400) would take both.
    ScopeIndexer(engine, min_rows=MIN_ROWS, max_scopes=2).run_once()
    held = [i.scope for i in _indexes(engine).values() if i.scope is not None]
    assert {s.tenant_id for s in held} == {tenant, other}
    assert Scope(tenant, agent) in held

    # A cap of one per tenant, however many slots there are.
    ScopeIndexer(engine, min_rows=MIN_ROWS, max_scopes=10, max_per_tenant=1).run_once()
    scopes = {i.scope for i in _indexes(engine).values() if i.scope is not None}
    assert len(scopes) == 2
    assert {s.tenant_id for s in scopes} == {tenant, other}
