"""The batch store's SQL on the real embedded Postgres, function by function: writing a batch
(all or nothing), admission bookkeeping, recording a run's outcome on its item, ending a
batch, and the tenant-scoped reads with their ordering and keyset pages. Runs are moved by
hand here; tests/agents/batches/test_lifecycle.py drives whole batches through the executor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from agents.batches import store as batch_store
from agents.records import NewBatch, NewBatchItem
from agents.runs import store as run_store
from agents.tables import BatchItemRow, BatchRow, RunRow
from core.db import transaction
from core.errors import NotFound
from tests.agents.conftest import World, WorldFactory


def new_batch(
    world: World,
    count: int,
    *,
    concurrency: int = 2,
    max_attempts: int = 2,
    metadata: dict[str, Any] | None = None,
) -> uuid.UUID:
    """A batch of `count` pending items on the world's agent, in its own transaction."""
    items = [NewBatchItem(f"q{i}", user_id=f"u{i}", metadata={"i": i}) for i in range(count)]
    with transaction(world.engine) as session:
        return batch_store.insert_batch(
            session,
            world.tenant_id,
            NewBatch(
                agent_id=world.agent_id,
                items=tuple(items),
                concurrency=concurrency,
                max_attempts=max_attempts,
                metadata=metadata or {},
            ),
        )


def queue_item(world: World, batch_id: uuid.UUID, position: int) -> uuid.UUID:
    """Give the item a new attempt (a queued run in a fresh session), as dispatch does."""
    chat = world.new_session()
    with transaction(world.engine) as session:
        run = run_store.create_run(session, world.tenant_id, chat.id, "q", batch_id=batch_id).run
        item = session.get_one(BatchItemRow, (batch_id, position))
        batch_store.mark_queued(session, item, run.id)
    return run.id


def end_run(
    world: World,
    run_id: uuid.UUID,
    status: str,
    *,
    error: dict[str, Any] | None = None,
    output: str | None = None,
    stop_reason: str | None = None,
    tokens: tuple[int, int, float] = (0, 0, 0.0),
) -> None:
    """End the run's row and record its outcome on its item, in one transaction."""
    with transaction(world.engine) as session:
        row = session.get_one(RunRow, run_id)
        row.status, row.error, row.output, row.stop_reason = status, error, output, stop_reason
        row.prompt_tokens, row.completion_tokens, row.cost_usd = tokens
        batch_store.record_outcome(session, row)


def item(world: World, batch_id: uuid.UUID, position: int) -> BatchItemRow:
    with transaction(world.engine) as session:
        return session.get_one(BatchItemRow, (batch_id, position))


def statuses(world: World, batch_id: uuid.UUID) -> list[str]:
    with transaction(world.engine) as session:
        return list(
            session.scalars(
                select(BatchItemRow.status)
                .where(BatchItemRow.batch_id == batch_id)
                .order_by(BatchItemRow.position)
            )
        )


def finish_if_done(world: World, batch_id: uuid.UUID) -> BatchRow:
    with transaction(world.engine) as session:
        batch = batch_store.lock_batch(session, batch_id)
        assert batch is not None
        batch_store.finish_if_done(session, batch)
        session.refresh(batch)  # finished_at is the database's now()
        return batch


WORKER_LOST = {"type": "worker_lost", "message": "gone"}


# -- writing ---------------------------------------------------------------------------------


def test_a_new_batch_is_running_with_every_item_pending_in_submission_order(world: World) -> None:
    batch_id = new_batch(world, 3, concurrency=5, max_attempts=3, metadata={"job": "nightly"})

    with transaction(world.engine) as session:
        batch = batch_store.get_batch(session, world.tenant_id, batch_id)
        rows = session.scalars(
            select(BatchItemRow)
            .where(BatchItemRow.batch_id == batch_id)
            .order_by(BatchItemRow.position)
        ).all()
        assert [(r.position, r.input, r.user_id, r.metadata_) for r in rows] == [
            (i, f"q{i}", f"u{i}", {"i": i}) for i in range(3)
        ]
        assert all(r.tenant_id == world.tenant_id for r in rows)
        assert all((r.status, r.attempts, r.run_id) == ("pending", 0, None) for r in rows)
    assert (batch.status, batch.concurrency, batch.max_attempts) == ("running", 5, 3)
    assert (batch.agent_id, batch.metadata, batch.cancel_requested) == (
        world.agent_id,
        {"job": "nightly"},
        False,
    )
    assert (batch.counts.pending, batch.counts.total) == (3, 3)
    assert (batch.usage.prompt_tokens, batch.usage.cost_usd) == (0, 0.0)
    assert batch.finished_at is None


def _count_batches(world: World) -> tuple[int, int]:
    with transaction(world.engine) as session:
        batches = session.scalar(select(func.count()).select_from(BatchRow))
        items = session.scalar(select(func.count()).select_from(BatchItemRow))
        return batches or 0, items or 0


@pytest.mark.parametrize(
    ("concurrency", "max_attempts"),
    [(0, 1), (65, 1), (1, 0)],
    ids=["no-slot", "too-many-slots", "no-attempt"],
)
def test_settings_out_of_range_are_refused_and_nothing_is_written(
    world: World, concurrency: int, max_attempts: int
) -> None:
    with pytest.raises(IntegrityError):
        new_batch(world, 2, concurrency=concurrency, max_attempts=max_attempts)
    assert _count_batches(world) == (0, 0)


def test_an_item_the_database_refuses_takes_its_batch_and_siblings_with_it(world: World) -> None:
    items = [NewBatchItem("fine"), NewBatchItem("fine too"), NewBatchItem("x", user_id="u" * 257)]
    with pytest.raises(DBAPIError), transaction(world.engine) as session:
        batch_store.insert_batch(
            session,
            world.tenant_id,
            NewBatch(
                agent_id=world.agent_id,
                items=tuple(items),
                concurrency=1,
                max_attempts=1,
                metadata={},
            ),
        )
    assert _count_batches(world) == (0, 0)


def test_a_batch_of_an_unknown_agent_is_refused(world: World) -> None:
    with pytest.raises(IntegrityError), transaction(world.engine) as session:
        batch_store.insert_batch(
            session,
            world.tenant_id,
            NewBatch(
                agent_id=uuid.uuid4(),
                items=tuple([NewBatchItem("q")]),
                concurrency=1,
                max_attempts=1,
                metadata={},
            ),
        )
    assert _count_batches(world) == (0, 0)


# -- admission bookkeeping -------------------------------------------------------------------


def test_lock_batch_sees_only_the_given_tenants_batch(
    world: World, new_world: WorldFactory
) -> None:
    batch_id = new_batch(world, 1)
    other = new_world()
    with transaction(world.engine) as session:
        locked = batch_store.lock_batch(session, batch_id)
        assert locked is not None
        assert locked.id == batch_id
        assert batch_store.lock_batch(session, batch_id, world.tenant_id) is locked
        assert batch_store.lock_batch(session, batch_id, other.tenant_id) is None
        assert batch_store.lock_batch(session, uuid.uuid4()) is None


def test_pending_items_are_admitted_lowest_position_first_around_active_ones(
    world: World,
) -> None:
    batch_id = new_batch(world, 5)
    runs = {0: queue_item(world, batch_id, 0), 2: queue_item(world, batch_id, 2)}

    with transaction(world.engine) as session:
        assert [r.position for r in batch_store.next_pending(session, batch_id, 2)] == [1, 3]
        assert [r.position for r in batch_store.next_pending(session, batch_id, 10)] == [1, 3, 4]
        assert batch_store.next_pending(session, batch_id, 0) == []
        assert batch_store.count_active(session, batch_id) == 2
        assert sorted(batch_store.active_run_ids(session, batch_id)) == sorted(runs.values())

    end_run(world, runs[0], "failed", error=WORKER_LOST)  # retryable: back to pending
    end_run(world, runs[2], "succeeded", output="ok")
    with transaction(world.engine) as session:
        assert [r.position for r in batch_store.next_pending(session, batch_id, 2)] == [0, 1]
        assert batch_store.count_active(session, batch_id) == 0
        assert batch_store.active_run_ids(session, batch_id) == []


def test_each_attempt_counts_and_the_item_names_the_latest_run(world: World) -> None:
    batch_id = new_batch(world, 1, max_attempts=3)
    first = queue_item(world, batch_id, 0)
    end_run(world, first, "failed", error=WORKER_LOST)
    second = queue_item(world, batch_id, 0)

    row = item(world, batch_id, 0)
    assert (row.status, row.attempts, row.run_id) == ("queued", 2, second)


def test_cancel_pending_touches_only_pending_items(world: World) -> None:
    batch_id = new_batch(world, 4)
    queued = queue_item(world, batch_id, 0)
    done = queue_item(world, batch_id, 1)
    end_run(world, done, "succeeded", output="ok")

    with transaction(world.engine) as session:
        batch_store.cancel_pending(session, batch_id)
    assert statuses(world, batch_id) == ["queued", "succeeded", "cancelled", "cancelled"]
    assert item(world, batch_id, 2).finished_at is not None
    assert item(world, batch_id, 0).finished_at is None
    assert item(world, batch_id, 0).run_id == queued


# -- recording outcomes ----------------------------------------------------------------------


def test_a_success_is_final_with_its_output_and_usage(world: World) -> None:
    batch_id = new_batch(world, 1)
    run_id = queue_item(world, batch_id, 0)
    end_run(world, run_id, "succeeded", output="42", stop_reason="answer", tokens=(11, 3, 0.25))

    row = item(world, batch_id, 0)
    assert (row.status, row.output, row.error) == ("succeeded", "42", None)
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (11, 3, 0.25)
    assert row.finished_at is not None


def test_a_retried_item_sums_the_usage_of_its_attempts_and_keeps_only_the_last_outcome(
    world: World,
) -> None:
    batch_id = new_batch(world, 1, max_attempts=2)
    first = queue_item(world, batch_id, 0)
    end_run(world, first, "failed", error=WORKER_LOST, tokens=(5, 1, 0.5))

    retry = item(world, batch_id, 0)
    assert (retry.status, retry.error, retry.finished_at) == ("pending", WORKER_LOST, None)
    assert (retry.prompt_tokens, retry.completion_tokens) == (5, 1)

    second = queue_item(world, batch_id, 0)
    end_run(world, second, "succeeded", output="fine", tokens=(7, 2, 0.25))
    done = item(world, batch_id, 0)
    assert (done.status, done.output, done.error, done.attempts) == ("succeeded", "fine", None, 2)
    assert (done.prompt_tokens, done.completion_tokens, done.cost_usd) == (12, 3, 0.75)


def test_the_last_allowed_attempt_fails_for_good(world: World) -> None:
    batch_id = new_batch(world, 1, max_attempts=1)
    run_id = queue_item(world, batch_id, 0)
    end_run(world, run_id, "failed", error=WORKER_LOST)

    row = item(world, batch_id, 0)
    assert (row.status, row.error) == ("failed", WORKER_LOST)
    assert row.finished_at is not None


def test_after_a_cancel_a_retryable_failure_is_not_retried(world: World) -> None:
    batch_id = new_batch(world, 1, max_attempts=5)
    run_id = queue_item(world, batch_id, 0)
    with transaction(world.engine) as session:
        session.get_one(BatchRow, batch_id).cancel_requested = True
    end_run(world, run_id, "failed", error=WORKER_LOST)

    assert item(world, batch_id, 0).status == "failed"


@pytest.mark.parametrize(
    ("stop_reason", "error_type"), [("max_steps", "max_steps"), (None, "incomplete")]
)
def test_an_incomplete_run_fails_its_item_with_an_error_naming_why(
    world: World, stop_reason: str | None, error_type: str
) -> None:
    batch_id = new_batch(world, 1, max_attempts=3)
    run_id = queue_item(world, batch_id, 0)
    end_run(world, run_id, "incomplete", stop_reason=stop_reason)

    row = item(world, batch_id, 0)
    assert row.status == "failed"  # the same spec would stop the same way again
    assert row.error == {"type": error_type, "message": "ended without an answer"}


def test_an_outcome_recorded_twice_counts_once(world: World) -> None:
    batch_id = new_batch(world, 1)
    run_id = queue_item(world, batch_id, 0)
    end_run(world, run_id, "succeeded", output="first", tokens=(10, 1, 0.0))
    end_run(world, run_id, "failed", error=WORKER_LOST, tokens=(10, 1, 0.0))

    row = item(world, batch_id, 0)
    assert (row.status, row.output, row.error) == ("succeeded", "first", None)
    assert (row.prompt_tokens, row.completion_tokens) == (10, 1)


def test_the_end_of_a_superseded_attempt_is_ignored(world: World) -> None:
    batch_id = new_batch(world, 1, max_attempts=3)
    first = queue_item(world, batch_id, 0)
    end_run(world, first, "failed", error=WORKER_LOST)
    second = queue_item(world, batch_id, 0)

    end_run(world, first, "succeeded", output="late", tokens=(99, 99, 9.0))  # stale, redelivered
    row = item(world, batch_id, 0)
    assert (row.status, row.run_id, row.output, row.prompt_tokens) == ("queued", second, None, 0)


def test_a_run_outside_any_batch_records_nothing(world: World) -> None:
    batch_id = new_batch(world, 1)
    queue_item(world, batch_id, 0)
    loose = world.message("not a batch run")
    end_run(world, loose.id, "succeeded", output="ok")

    assert statuses(world, batch_id) == ["queued"]


# -- ending a batch --------------------------------------------------------------------------


def test_a_batch_ends_only_once_every_item_is_final(world: World) -> None:
    batch_id = new_batch(world, 2)
    a, b = queue_item(world, batch_id, 0), queue_item(world, batch_id, 1)
    end_run(world, a, "succeeded", output="ok")
    assert finish_if_done(world, batch_id).status == "running"

    end_run(world, b, "cancelled")  # one cancelled run does not make the batch cancelled
    done = finish_if_done(world, batch_id)
    assert done.status == "completed"
    assert done.finished_at is not None


def test_a_batch_asked_to_cancel_ends_cancelled_and_an_ended_one_never_changes(
    world: World,
) -> None:
    batch_id = new_batch(world, 2)
    with transaction(world.engine) as session:
        session.get_one(BatchRow, batch_id).cancel_requested = True
        batch_store.cancel_pending(session, batch_id)
    done = finish_if_done(world, batch_id)
    assert done.status == "cancelled"
    finished_at = done.finished_at

    with transaction(world.engine) as session:
        session.get_one(BatchRow, batch_id).cancel_requested = False
    again = finish_if_done(world, batch_id)
    assert (again.status, again.finished_at) == ("cancelled", finished_at)


# -- reading ---------------------------------------------------------------------------------


def test_a_batch_of_another_tenant_or_unknown_is_not_found(
    world: World, new_world: WorldFactory
) -> None:
    batch_id = new_batch(world, 1)
    other = new_world()
    with transaction(world.engine) as session:
        for tenant_id, ident in ((other.tenant_id, batch_id), (world.tenant_id, uuid.uuid4())):
            with pytest.raises(NotFound) as caught:
                batch_store.get_batch(session, tenant_id, ident)
            assert (caught.value.kind, caught.value.ident) == ("batch", str(ident))


def test_counts_split_queued_from_running_and_usage_sums_every_item(world: World) -> None:
    batch_id = new_batch(world, 6, concurrency=3, max_attempts=2)
    running, queued, failed = (queue_item(world, batch_id, i) for i in range(3))
    with transaction(world.engine) as session:
        assert run_store.claim(session, running, "worker-1", 30.0) is not None
    end_run(
        world, failed, "failed", error={"type": "model_error", "message": "no"}, tokens=(4, 0, 0.5)
    )
    done = queue_item(world, batch_id, 3)
    end_run(world, done, "succeeded", output="ok", tokens=(6, 2, 0.25))
    with transaction(world.engine) as session:
        batch_store.cancel_pending(session, batch_id)

    with transaction(world.engine) as session:
        batch = batch_store.get_batch(session, world.tenant_id, batch_id)
    counts = batch.counts
    assert (counts.pending, counts.queued, counts.running) == (0, 1, 1)
    assert (counts.succeeded, counts.failed, counts.cancelled, counts.total) == (1, 1, 2, 6)
    assert (batch.usage.prompt_tokens, batch.usage.completion_tokens) == (10, 2)
    assert batch.usage.cost_usd == pytest.approx(0.75)
    assert item(world, batch_id, 1).run_id == queued


def test_batches_list_newest_first_per_tenant(world: World, new_world: WorldFactory) -> None:
    made = [new_batch(world, 1) for _ in range(3)]  # one transaction each: distinct times
    other = new_world()
    new_batch(other, 1)

    with transaction(world.engine) as session:
        listed = batch_store.list_batches(session, world.tenant_id, limit=10)
        assert [b.id for b in listed] == made[::-1]
        assert [b.id for b in batch_store.list_batches(session, world.tenant_id, limit=2)] == (
            made[::-1][:2]
        )
        (theirs,) = batch_store.list_batches(session, other.tenant_id, limit=10)
    assert theirs.tenant_id == other.tenant_id
    assert all(b.counts.pending == 1 for b in listed)


def test_pages_over_batches_created_at_the_same_instant_miss_and_repeat_none(
    world: World,
) -> None:
    with transaction(world.engine) as session:  # one transaction: the same created_at for all
        made = [
            batch_store.insert_batch(
                session,
                world.tenant_id,
                NewBatch(
                    agent_id=world.agent_id,
                    items=tuple([NewBatchItem("q")]),
                    concurrency=1,
                    max_attempts=1,
                    metadata={},
                ),
            )
            for _ in range(5)
        ]
    seen: list[uuid.UUID] = []
    with transaction(world.engine) as session:
        cursor = None
        for _ in range(5):
            page = batch_store.list_batches(session, world.tenant_id, limit=2, before=cursor)
            if not page:
                break
            seen += [b.id for b in page]
            cursor = (page[-1].created_at, page[-1].id)
        assert (
            len({b.created_at for b in batch_store.list_batches(session, world.tenant_id, limit=9)})
            == 1
        )
    assert seen == sorted(made, reverse=True)  # ties broken by id, descending


def test_the_page_after_the_oldest_batch_is_empty(world: World) -> None:
    new_batch(world, 1)
    with transaction(world.engine) as session:
        (only,) = batch_store.list_batches(session, world.tenant_id, limit=5)
        after = (only.created_at, only.id)
        assert batch_store.list_batches(session, world.tenant_id, limit=5, before=after) == []


def test_results_are_final_items_in_position_order_after_the_cursor(world: World) -> None:
    batch_id = new_batch(world, 6, concurrency=6)
    runs = [queue_item(world, batch_id, i) for i in range(5)]
    for position in (4, 0, 2, 3):  # ending out of order; 1 stays queued, 5 pending
        end_run(world, runs[position], "succeeded", output=f"a{position}")
    other_batch = new_batch(world, 1)
    end_run(world, queue_item(world, other_batch, 0), "succeeded", output="elsewhere")

    def positions(**options: Any) -> list[int]:
        with transaction(world.engine) as session:
            found = batch_store.finished_items(session, world.tenant_id, batch_id, **options)
            return [r.position for r in found]

    assert positions() == [0, 2, 3, 4]
    assert positions(after=0) == [2, 3, 4]
    assert positions(after=2, limit=1) == [3]
    assert positions(skip=[0, 3]) == [2, 4]
    assert positions(after=4) == []
    with transaction(world.engine) as session:
        first = batch_store.finished_items(session, world.tenant_id, batch_id, limit=1)[0]
    assert (first.input, first.user_id, first.metadata, first.output) == (
        "q0",
        "u0",
        {"i": 0},
        "a0",
    )
    assert (first.status, first.attempts, first.run_id) == ("succeeded", 1, runs[0])


def test_results_of_another_tenants_batch_are_empty(world: World, new_world: WorldFactory) -> None:
    batch_id = new_batch(world, 1)
    end_run(world, queue_item(world, batch_id, 0), "succeeded", output="secret")
    other = new_world()
    with transaction(world.engine) as session:
        assert batch_store.finished_items(session, other.tenant_id, batch_id) == []
        assert len(batch_store.finished_items(session, world.tenant_id, batch_id)) == 1


# -- the sweeper's query ---------------------------------------------------------------------


def test_stalled_finds_batches_that_could_admit_or_end_and_nothing_else(world: World) -> None:
    can_admit = new_batch(world, 2, concurrency=2)
    queue_item(world, can_admit, 0)  # one slot of two taken, an item pending

    full = new_batch(world, 2, concurrency=1)
    queue_item(world, full, 0)  # its one slot taken: waiting on that run is right

    all_final = new_batch(world, 1)
    end_run(world, queue_item(world, all_final, 0), "succeeded", output="ok")  # not ended yet

    busy = new_batch(world, 1)
    queue_item(world, busy, 0)  # nothing pending, its run active

    ended = new_batch(world, 1)
    end_run(world, queue_item(world, ended, 0), "succeeded", output="ok")
    finish_if_done(world, ended)

    with transaction(world.engine) as session:
        assert batch_store.stalled(session) == [can_admit, all_final]  # oldest first
        assert batch_store.stalled(session, limit=1) == [can_admit]
