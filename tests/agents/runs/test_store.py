"""Creating a run while other transactions change what it refers to, on the real database: a
row deleted meanwhile is NotFound (never "Idempotency-Key reused"), a delete of the agent and
a new message never deadlock, and runs sort in the order they took their session's lock."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from agents import agent_store
from agents.errors import AgentBusy, IdempotencyKeyReused
from agents.runs import store as run_store
from core.db import transaction
from core.errors import NotFound
from tests.agents.conftest import World


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_for_lock_wait(engine: Engine, waiters: int = 1) -> None:
    """Block until `waiters` backends of this database wait on a row lock."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        if waiting >= waiters:
            return
        time.sleep(0.02)
    raise AssertionError("no transaction came to wait on the lock")


def test_a_message_racing_an_agent_delete_is_not_found(world: World) -> None:
    deleting = Session(world.engine)
    agent_store.delete_agent(deleting, world.tenant_id, world.agent_id)
    deleting.flush()  # deleted, not yet committed

    def message() -> Any:
        with transaction(world.engine) as session:
            return run_store.create_run(
                session, world.tenant_id, world.chat.id, "hi", idempotency_key="k-1"
            )

    thread, outcome = _in_thread(message)
    _wait_for_lock_wait(world.engine)
    deleting.commit()
    deleting.close()
    thread.join(10)
    error = outcome.get("error")
    assert isinstance(error, NotFound)
    assert not isinstance(error, IdempotencyKeyReused)
    assert error.kind in ("agent", "session")


def test_an_agent_delete_racing_a_message_waits_and_is_refused(world: World) -> None:
    with transaction(world.engine) as session:
        run_store.create_run(session, world.tenant_id, world.chat.id, "hi")

        def delete() -> None:
            with transaction(world.engine) as other:
                agent_store.delete_agent(other, world.tenant_id, world.agent_id)

        thread, outcome = _in_thread(delete)
        _wait_for_lock_wait(world.engine)  # the delete waits for this transaction: no deadlock
    thread.join(10)
    assert isinstance(outcome.get("error"), AgentBusy)


def test_a_batch_deleted_meanwhile_is_not_found_not_a_reused_key(world: World) -> None:
    gone = uuid.uuid4()  # the run's batch row is no longer there when the run is written
    for key in (None, "k-2"):
        with pytest.raises(NotFound) as info, transaction(world.engine) as session:
            run_store.create_run(
                session, world.tenant_id, world.chat.id, "hi", idempotency_key=key, batch_id=gone
            )
        assert (info.value.kind, info.value.ident) == ("batch", str(gone))


def test_a_key_sent_at_once_to_two_sessions_is_still_a_reused_key(world: World) -> None:
    other = world.new_session()
    with transaction(world.engine) as session:
        run_store.create_run(session, world.tenant_id, world.chat.id, "hi", idempotency_key="k")

        def same_key() -> Any:
            with transaction(world.engine) as second:
                return run_store.create_run(
                    second, world.tenant_id, other.id, "hi", idempotency_key="k"
                )

        thread, outcome = _in_thread(same_key)
        _wait_for_lock_wait(world.engine)  # on the unique index, until the first commits
    thread.join(10)
    assert isinstance(outcome.get("error"), IdempotencyKeyReused)


def test_runs_sort_in_the_order_they_took_the_session(world: World) -> None:
    early = Session(world.engine)
    early.execute(text("SELECT 1"))  # its transaction, and its now(), start here
    time.sleep(0.05)
    with transaction(world.engine) as session:  # begins later, writes and commits first
        first = run_store.create_run(session, world.tenant_id, world.chat.id, "one", queue=True)
    second = run_store.create_run(early, world.tenant_id, world.chat.id, "two", queue=True)
    early.commit()
    early.close()

    assert first.start_now
    assert not second.start_now
    assert first.run.created_at < second.run.created_at
    with transaction(world.engine) as session:
        assert run_store.next_queued(session, world.chat.id) == first.run.id
        order = session.scalars(
            text("SELECT input FROM runs WHERE session_id = :s ORDER BY created_at"),
            {"s": world.chat.id},
        ).all()
    assert order == ["one", "two"]
