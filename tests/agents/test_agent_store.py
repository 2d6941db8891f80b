"""The agent store's reads, lists and deletes on the real embedded Postgres: every one scoped to
its tenant (another tenant's row is NotFound, never data), the keyset pages and their ties,
the refusal to delete an agent with an active run leaving everything in place, the message
cursor, and the summary bookkeeping. Agents are created by the shared `world` fixture; only
the listing of several agents of one tenant creates its own, through `add_agents`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents import agent_store
from agents.batches import lifecycle
from agents.errors import AgentBusy
from agents.records import ChatSession, MemoryPolicy, NewAgent, NewBatch, NewBatchItem
from agents.runs import store as run_store
from agents.tables import MessageRow, RunRow, SessionRow
from core.db import transaction
from core.errors import NotFound
from tests.agents.conftest import World, WorldFactory
from tests.agents.runs.test_store import _wait_for_lock_wait


def answer(world: World, run_id: uuid.UUID, output: str) -> None:
    """End a run with an answer, as a worker does (the answer becomes a session message)."""
    with transaction(world.engine) as session:
        assert run_store.claim(session, run_id, "worker", 30.0) is not None
    with transaction(world.engine) as session:
        row = run_store.owned(session, run_id, "worker")
        run_store.finish(session, row, "succeeded", stop_reason="answer", output=output)


def count(world: World, table: Any, **where: Any) -> int:
    with transaction(world.engine) as session:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return session.scalar(query) or 0


def sessions_at_once(world: World, users: list[str | None]) -> list[ChatSession]:
    """Sessions created in one transaction: they share one created_at."""
    with transaction(world.engine) as session:
        return [
            agent_store.create_session(
                session, world.tenant_id, world.agent_id, user_id=user, metadata={"n": n}
            )
            for n, user in enumerate(users)
        ]


# -- agents ------------------------------------------------------------------------------


def test_an_agent_reads_back_as_stored(world: World) -> None:
    with transaction(world.engine) as session:
        agent = agent_store.get_agent(session, world.tenant_id, world.agent_id)

    assert (agent.id, agent.tenant_id, agent.name) == (world.agent_id, world.tenant_id, "helper")
    assert (agent.instructions, agent.model, agent.max_steps) == ("You help.", "local", 5)
    assert agent.tools == tuple(world.registry.names())
    assert agent.memory == MemoryPolicy(extract_facts=False)
    assert (agent.tool_choice, agent.temperature, agent.metadata) == ("auto", None, {})
    assert agent.updated_at >= agent.created_at


def test_an_agent_of_another_tenant_or_unknown_is_not_found(
    world: World, new_world: WorldFactory
) -> None:
    other = new_world()
    with transaction(world.engine) as session:
        for tenant_id, agent_id in (
            (other.tenant_id, world.agent_id),
            (world.tenant_id, other.agent_id),
            (world.tenant_id, uuid.uuid4()),
        ):
            with pytest.raises(NotFound) as caught:
                agent_store.get_agent(session, tenant_id, agent_id)
            assert (caught.value.kind, caught.value.ident) == ("agent", str(agent_id))


def test_each_tenant_lists_only_its_own_agents(world: World, new_world: WorldFactory) -> None:
    other = new_world()
    with transaction(world.engine) as session:
        mine = agent_store.list_agents(session, world.tenant_id, limit=10)
        theirs = agent_store.list_agents(session, other.tenant_id, limit=10)
        after_last = agent_store.list_agents(
            session, world.tenant_id, limit=10, after=(mine[-1].created_at, mine[-1].id)
        )
        nobody = agent_store.list_agents(session, uuid.uuid4(), limit=10)

    assert [a.id for a in mine] == [world.agent_id]
    assert [a.id for a in theirs] == [other.agent_id]
    assert after_last == nobody == []


def test_deleting_an_agent_takes_its_sessions_runs_and_messages(world: World) -> None:
    run = world.message("hello")
    answer(world, run.id, "hi there")
    assert count(world, MessageRow, session_id=world.chat.id) == 2

    with transaction(world.engine) as session:
        agent_store.delete_agent(session, world.tenant_id, world.agent_id)

    with transaction(world.engine) as session:
        with pytest.raises(NotFound):
            agent_store.get_agent(session, world.tenant_id, world.agent_id)
        with pytest.raises(NotFound):
            agent_store.get_session(session, world.tenant_id, world.chat.id)
    assert count(world, SessionRow, agent_id=world.agent_id) == 0
    assert count(world, RunRow, agent_id=world.agent_id) == 0
    assert count(world, MessageRow, session_id=world.chat.id) == 0


def test_an_agent_with_an_active_run_is_kept_whole_until_the_run_ends(world: World) -> None:
    run = world.message("hello")

    with pytest.raises(AgentBusy, match="1 active run"), transaction(world.engine) as session:
        agent_store.delete_agent(session, world.tenant_id, world.agent_id)
    with transaction(world.engine) as session:
        assert agent_store.get_agent(session, world.tenant_id, world.agent_id).id == world.agent_id
        assert agent_store.get_session(session, world.tenant_id, world.chat.id).id == world.chat.id
    assert count(world, MessageRow, session_id=world.chat.id) == 1

    answer(world, run.id, "done")  # an ended run no longer holds its agent
    with transaction(world.engine) as session:
        agent_store.delete_agent(session, world.tenant_id, world.agent_id)
    assert count(world, RunRow, id=run.id) == 0


def test_another_tenant_cannot_delete_an_agent(world: World, new_world: WorldFactory) -> None:
    other = new_world()
    with pytest.raises(NotFound), transaction(world.engine) as session:
        agent_store.delete_agent(session, other.tenant_id, world.agent_id)

    with transaction(world.engine) as session:
        assert agent_store.get_agent(session, world.tenant_id, world.agent_id).name == "helper"


# -- sessions ----------------------------------------------------------------------------


def test_a_session_reads_back_as_created(world: World) -> None:
    with transaction(world.engine) as session:
        made = agent_store.create_session(
            session, world.tenant_id, world.agent_id, user_id="ann", metadata={"channel": "web"}
        )
    with transaction(world.engine) as session:
        read = agent_store.get_session(session, world.tenant_id, made.id)
        locked = agent_store.lock_session(session, world.tenant_id, made.id)

    assert read == locked == made
    assert (read.agent_id, read.tenant_id, read.user_id) == (world.agent_id, world.tenant_id, "ann")
    assert (read.metadata, read.summary, read.summary_through) == ({"channel": "web"}, "", 0)


def test_a_session_for_an_agent_of_another_tenant_is_refused_and_not_written(
    world: World, new_world: WorldFactory
) -> None:
    other = new_world()
    before = count(world, SessionRow)
    for agent_id in (other.agent_id, uuid.uuid4()):
        with pytest.raises(NotFound) as caught, transaction(world.engine) as session:
            agent_store.create_session(
                session, world.tenant_id, agent_id, user_id="ann", metadata={}
            )
        assert caught.value.kind == "agent"
    assert count(world, SessionRow) == before


def test_a_session_of_another_tenant_or_unknown_is_not_found(
    world: World, new_world: WorldFactory
) -> None:
    other = new_world()
    with transaction(world.engine) as session:
        for read in (agent_store.get_session, agent_store.lock_session):
            for tenant_id, session_id in (
                (other.tenant_id, world.chat.id),
                (world.tenant_id, uuid.uuid4()),
            ):
                with pytest.raises(NotFound) as caught:
                    read(session, tenant_id, session_id)
                assert (caught.value.kind, caught.value.ident) == ("session", str(session_id))


def test_sessions_list_newest_first_and_by_end_user(world: World) -> None:
    later = [world.new_session(user) for user in ("ann", "bob", "ann")]  # a transaction each

    def listed(**options: Any) -> list[uuid.UUID]:
        with transaction(world.engine) as session:
            found = agent_store.list_sessions(
                session, world.tenant_id, world.agent_id, limit=10, **options
            )
            return [s.id for s in found]

    assert listed() == [s.id for s in reversed(later)] + [world.chat.id]
    assert listed(user_id="ann") == [later[2].id, later[0].id]
    assert listed(user_id="nobody") == []


def test_session_pages_over_one_instant_miss_and_repeat_none(world: World) -> None:
    made = sessions_at_once(world, ["ann", None, "ann", "bob", "ann"])
    assert len({s.created_at for s in made}) == 1

    def pages(user_id: str | None) -> list[uuid.UUID]:
        seen: list[uuid.UUID] = []
        cursor = None
        with transaction(world.engine) as session:
            while page := agent_store.list_sessions(
                session, world.tenant_id, world.agent_id, user_id=user_id, limit=2, before=cursor
            ):
                seen += [s.id for s in page]
                cursor = (page[-1].created_at, page[-1].id)
        return seen

    assert pages(None) == [*sorted((s.id for s in made), reverse=True), world.chat.id]
    assert pages("ann") == sorted((s.id for s in made if s.user_id == "ann"), reverse=True)


def test_sessions_of_an_unknown_or_foreign_agent_are_not_found(
    world: World, new_world: WorldFactory
) -> None:
    other = new_world()
    with transaction(world.engine) as session:
        for tenant_id, agent_id in (
            (world.tenant_id, other.agent_id),
            (world.tenant_id, uuid.uuid4()),
        ):
            with pytest.raises(NotFound):
                agent_store.list_sessions(session, tenant_id, agent_id, limit=10)
        (theirs,) = agent_store.list_sessions(session, other.tenant_id, other.agent_id, limit=10)
    assert theirs.id == other.chat.id


# -- messages ----------------------------------------------------------------------------


def test_messages_come_oldest_first_after_a_seq_cursor(world: World) -> None:
    first = world.message("one")
    answer(world, first.id, "answer one")
    world.message("two")
    elsewhere = world.new_session()
    world.message("not here", chat=elsewhere)

    def contents(**options: Any) -> list[str]:
        with transaction(world.engine) as session:
            found = agent_store.list_messages(session, world.tenant_id, world.chat.id, **options)
            return [m.content for m in found]

    with transaction(world.engine) as session:
        messages = agent_store.list_messages(session, world.tenant_id, world.chat.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "one"),
        ("assistant", "answer one"),
        ("user", "two"),
    ]
    assert [m.seq for m in messages] == sorted(m.seq for m in messages)
    assert messages[0].run_id == messages[1].run_id == first.id
    assert contents(after_seq=messages[0].seq) == ["answer one", "two"]
    assert contents(after_seq=messages[0].seq, limit=1) == ["answer one"]
    assert contents(after_seq=messages[-1].seq) == []


def test_messages_of_another_tenants_session_are_not_found(
    world: World, new_world: WorldFactory
) -> None:
    world.message("private")
    other = new_world()
    with pytest.raises(NotFound), transaction(world.engine) as session:
        agent_store.list_messages(session, other.tenant_id, world.chat.id)


def test_a_summary_is_replaced_only_by_one_covering_more_messages(world: World) -> None:
    def save(summary: str, through: int) -> tuple[str, int]:
        with transaction(world.engine) as session:
            agent_store.save_summary(session, world.chat.id, summary, through)
        with transaction(world.engine) as session:
            chat = agent_store.get_session(session, world.tenant_id, world.chat.id)
            return chat.summary, chat.summary_through

    assert save("up to five", 5) == ("up to five", 5)
    assert save("a slower writer, up to three", 3) == ("up to five", 5)
    assert save("the same five again", 5) == ("up to five", 5)
    assert save("up to nine", 9) == ("up to nine", 9)


def test_history_is_the_earlier_runs_messages_including_an_answer_written_later(
    world: World,
) -> None:
    first = world.message("first question")
    second = world.message("second question", queue=True)  # waits behind the first
    answer(world, first.id, "first answer")  # written after the second question
    third = world.message("third question", queue=True)

    def history(run_created_at: Any, after_seq: int = 0) -> list[str]:
        with transaction(world.engine) as session:
            found = agent_store.unsummarised_history(
                session, world.chat.id, run_created_at, after_seq
            )
            return [m.content for m in found]

    assert history(first.created_at) == []
    assert history(second.created_at) == ["first question", "first answer"]
    # In message order: the first answer was written after the second question.
    assert history(third.created_at) == ["first question", "second question", "first answer"]
    with transaction(world.engine) as session:
        seqs = [m.seq for m in agent_store.list_messages(session, world.tenant_id, world.chat.id)]
    assert history(third.created_at, after_seq=seqs[0]) == ["second question", "first answer"]


# -- several agents of one tenant (these create agents themselves) -----------------------


def add_agents(world: World, names: list[str]) -> list[uuid.UUID]:
    """More agents of the world's tenant, created in one transaction (one created_at)."""
    with transaction(world.engine) as session:
        return [
            agent_store.create_agent(
                session, world.tenant_id, NewAgent(name=name, model="local", max_steps=3)
            ).id
            for name in names
        ]


def test_agent_pages_over_one_instant_miss_and_repeat_none(world: World) -> None:
    made = add_agents(world, [f"agent-{i}" for i in range(5)])

    seen: list[uuid.UUID] = []
    cursor = None
    with transaction(world.engine) as session:
        times = {agent_store.get_agent(session, world.tenant_id, i).created_at for i in made}
        while page := agent_store.list_agents(session, world.tenant_id, limit=2, after=cursor):
            seen += [a.id for a in page]
            cursor = (page[-1].created_at, page[-1].id)
    assert len(times) == 1
    assert seen == [world.agent_id, *sorted(made)]  # oldest first; ties by id, ascending


def _racing_an_agent_delete(world: World, write: Callable[[Session], object]) -> object:
    """What `write` raises (or returns) in a transaction that starts while a delete of the
    world's agent is flushed but not committed, and waits for it."""
    deleting = Session(world.engine)
    agent_store.delete_agent(deleting, world.tenant_id, world.agent_id)
    deleting.flush()
    outcome: dict[str, object] = {}

    def start() -> None:
        try:
            with transaction(world.engine) as session:
                outcome["value"] = write(session)
        except Exception as exc:
            outcome["value"] = exc

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    _wait_for_lock_wait(world.engine)
    deleting.commit()
    deleting.close()
    thread.join(10)
    return outcome.get("value")


def test_a_session_racing_an_agent_delete_is_not_found(world: World) -> None:
    error = _racing_an_agent_delete(
        world,
        lambda session: agent_store.create_session(
            session, world.tenant_id, world.agent_id, user_id=None, metadata={}
        ),
    )
    assert isinstance(error, NotFound)
    assert error.kind == "agent"


def test_a_batch_racing_an_agent_delete_is_not_found(world: World) -> None:
    error = _racing_an_agent_delete(
        world,
        lambda session: lifecycle.create_batch(
            session,
            world.tenant_id,
            NewBatch(
                agent_id=world.agent_id,
                items=tuple([NewBatchItem("question")]),
                concurrency=1,
                max_attempts=1,
                metadata={},
            ),
        ),
    )
    assert isinstance(error, NotFound)
    assert error.kind == "agent"


def test_a_delete_racing_a_new_session_waits_and_takes_it(world: World) -> None:
    with transaction(world.engine) as session:
        chat = agent_store.create_session(
            session, world.tenant_id, world.agent_id, user_id=None, metadata={}
        )

        def delete() -> None:
            with transaction(world.engine) as other:
                agent_store.delete_agent(other, world.tenant_id, world.agent_id)

        thread = threading.Thread(target=delete, daemon=True)
        thread.start()
        _wait_for_lock_wait(world.engine)  # the delete waits for this transaction
    thread.join(10)
    assert count(world, SessionRow, id=chat.id) == 0
