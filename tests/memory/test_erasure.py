"""Erasure tombstones and their locks on the real Postgres: writes that began before an erase
store nothing, whichever of the two gets to the database first; new data after it is kept."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from core.config import Settings
from core.db import transaction
from memory import erasure
from memory import queries as sql
from memory.embedder import HashingEmbedder
from memory.erasure import ErasedSource
from memory.filters import MemoryFilter
from memory.records import NewMemory
from memory.store import MemoryStore
from memory.tables import Erasure

USER = "ann"


@pytest.fixture
def store(engine: Engine, memory_settings: Settings) -> Iterator[MemoryStore]:
    with MemoryStore(engine, HashingEmbedder(), memory_settings) as memory:
        yield memory


def _erase(engine: Engine, tenant: uuid.UUID, agent: uuid.UUID | None = None) -> int:
    with transaction(engine) as session:
        erasure.record_user_erasure(session, tenant, USER, agent)
        return erasure.erase_user_memories(session, tenant, USER, agent, []).memories


def _from_a_run(agent: uuid.UUID, content: str = "Ann likes tea") -> NewMemory:
    """A memory as a run writes it: its run (here, one that no longer exists) as provenance."""
    return NewMemory(agent, content, user_id=USER, kind="fact", source_run_id=uuid.uuid4())


def _count(store: MemoryStore, tenant: uuid.UUID) -> int:
    return len(store.list_memories(tenant, MemoryFilter(user_id=USER)))


def test_a_write_from_before_the_erase_is_refused(
    store: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    store.add(tenant, _from_a_run(agent))
    assert _erase(engine, tenant) == 1
    with pytest.raises(ErasedSource):
        store.add(tenant, _from_a_run(agent, "Ann likes coffee"))
    episode = NewMemory(agent, "User: hi", user_id=USER, session_id=uuid.uuid4())
    with pytest.raises(ErasedSource):  # an episode of a session the erase removed
        store.add(tenant, episode)
    assert _count(store, tenant) == 0
    # A write with no run or session behind it is new data: kept.
    store.add(tenant, NewMemory(agent, "Ann is back", user_id=USER, kind="fact"))
    assert _count(store, tenant) == 1


def test_the_tombstone_keeps_no_user_id(engine: Engine, tenant: uuid.UUID) -> None:
    _erase(engine, tenant)
    with transaction(engine) as session:
        row = session.scalars(select(Erasure).where(Erasure.tenant_id == tenant)).one()
    assert row.user_hash == erasure.user_hash(tenant, USER)
    assert USER.encode() not in row.user_hash


def test_an_erase_of_one_agent_refuses_only_that_agents_writes(
    store: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    _erase(engine, tenant, agent)
    with pytest.raises(ErasedSource):
        store.add(tenant, _from_a_run(agent))
    store.add(tenant, _from_a_run(uuid.uuid4()))  # another agent's memory of the user
    other_tenant_write = _from_a_run(agent)
    with transaction(engine) as session:
        assert erasure.refused(session, uuid.uuid4(), [other_tenant_write]) == [False]


def test_a_write_of_a_deleted_session_is_refused(
    store: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    chat = uuid.uuid4()
    with transaction(engine) as session:
        erasure.record_session_erasure(session, tenant, chat)
    with pytest.raises(ErasedSource):
        store.add(tenant, NewMemory(agent, "User: hi", session_id=chat))  # no user at all
    store.add(tenant, NewMemory(agent, "User: hi", session_id=uuid.uuid4()))


def _in_thread(target: object) -> tuple[threading.Thread, list[BaseException | object]]:
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(target())  # type: ignore[operator]
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_an_erase_waits_for_a_write_in_flight_then_removes_it(
    store: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    item = _from_a_run(agent)
    embedded = store.embedder.embed([item.content])[0]
    with transaction(engine) as session:
        erasure.check_writes(session, tenant, [item])  # the writer holds the user's lock
        thread, outcome = _in_thread(lambda: _erase(engine, tenant))
        time.sleep(0.5)
        assert thread.is_alive()
        assert not outcome
        sql.insert_memories(
            session,
            tenant,
            [
                {
                    "agent_id": agent,
                    "user_id": USER,
                    "kind": "fact",
                    "content": item.content,
                    "embedding": embedded,
                    "context_embedding": embedded,
                }
            ],
        )
    thread.join(10)
    assert outcome == [1]  # the erase saw the committed write and removed it
    assert _count(store, tenant) == 0


def test_a_write_that_waits_for_an_erase_is_refused(
    store: MemoryStore, engine: Engine, tenant: uuid.UUID, agent: uuid.UUID
) -> None:
    with transaction(engine) as session:
        erasure.record_user_erasure(session, tenant, USER, None)  # holds the lock
        thread, outcome = _in_thread(lambda: store.add(tenant, _from_a_run(agent)))
        time.sleep(0.5)
        assert thread.is_alive()
        assert not outcome
    thread.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ErasedSource)
    assert _count(store, tenant) == 0
