"""Batches: many inputs for one agent, each run as its own run in its own session through the
normal queue, at most `concurrency` of them queued or running at once.

`dispatch` is the one place that admits items: under the batch's row lock it counts the items
with an active run and starts runs for the next pending ones up to the limit, and ends the
batch once every item is final. It runs when the batch is created, after each of its runs ends
(agents/runs/executor.py), and from the workers' sweeper as a safety net; the caller sends the runs
it returns to the queue after the commit.

Fairness: a batch puts at most `concurrency` runs in the queue at a time and the next one only
when one of those ends, so one batch holds at most `concurrency` worker slots. Between tenants
the worker's fair claim (agents/runs/fair_claim.py) hands each freed slot to the tenant with the
fewest running runs, so one tenant's batches delay another's message by one slot's turn.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agents import agent_store
from agents.batches import store as batch_store
from agents.records import Batch, NewBatch
from agents.runs import lineage
from agents.runs import store as run_store
from agents.tables import BatchItemRow, BatchRow
from agents.worker.queue import Send, send_committed
from core.db import transaction
from core.errors import NotFound

log = logging.getLogger(__name__)


def create_batch(
    session: Session, tenant_id: uuid.UUID, new: NewBatch
) -> tuple[Batch, list[uuid.UUID]]:
    """Write a batch of the tenant's agent and start its first items in the caller's
    transaction; returns it with the runs to send after the commit."""
    agent_store.hold_agent(session, tenant_id, new.agent_id)  # NotFound for another tenant's
    batch_id = batch_store.insert_batch(session, tenant_id, new)
    started = dispatch(session, batch_id)
    return batch_store.get_batch(session, tenant_id, batch_id), started


def dispatch(session: Session, batch_id: uuid.UUID) -> list[uuid.UUID]:
    """Admit pending items up to the batch's concurrency (or cancel them, after a cancel), and
    end the batch when nothing is left open. Returns the new runs, to send after the commit."""
    batch = batch_store.lock_batch(session, batch_id)
    if batch is None or batch.status != "running":
        return []
    started: list[uuid.UUID] = []
    if batch.cancel_requested:
        batch_store.cancel_pending(session, batch_id)
    else:
        free = batch.concurrency - batch_store.count_active(session, batch_id)
        if free > 0:
            for item in batch_store.next_pending(session, batch_id, free):
                started.append(_start(session, batch, item))
    batch_store.finish_if_done(session, batch)
    return started


def _start(session: Session, batch: BatchRow, item: BatchItemRow) -> uuid.UUID:
    """A new attempt of the item: a fresh session (no history of an earlier attempt) and a
    queued run in it. A retry continues the failed attempt (agents/runs/lineage.py): its steps and
    tool results are copied in, so no tool effect already made is made again."""
    chat = agent_store.create_session(
        session,
        batch.tenant_id,
        batch.agent_id,
        user_id=item.user_id,
        metadata={"batch_id": str(batch.id), "batch_position": item.position},
    )
    previous = item.run_id  # the latest attempt's run, if there was one
    new = run_store.create_run(
        session,
        batch.tenant_id,
        chat.id,
        item.input,
        metadata=item.metadata_,
        batch_id=batch.id,
        previous_run_id=previous,
    )
    if previous is not None:
        lineage.continue_from(session, new.run.id, previous)
    batch_store.mark_queued(session, item, new.run.id)
    return new.run.id


def cancel_batch(session: Session, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
    """Stop a batch: pending items are cancelled now, queued runs end now, running ones at
    their worker's next check; the batch is `cancelled` once none is active. Idempotent."""
    batch = batch_store.lock_batch(session, batch_id, tenant_id)
    if batch is None:
        raise NotFound("batch", str(batch_id))
    if batch.status == "running":
        batch.cancel_requested = True
        batch_store.cancel_pending(session, batch_id)
        for run_id in batch_store.active_run_ids(session, batch_id):
            # A queued run ends here, and its item is recorded `cancelled` with it.
            run_store.request_cancel(session, tenant_id, run_id)
        batch_store.finish_if_done(session, batch)
    return batch_store.get_batch(session, tenant_id, batch_id)


# -- one transaction, then the sends ---------------------------------------------------------


def advance(engine: Engine, batch_id: uuid.UUID, send: Send) -> int:
    """`dispatch` in its own transaction, then send what it started; returns how many."""
    with transaction(engine) as session:
        started = dispatch(session, batch_id)
    send_committed(send, started, "batch run")
    return len(started)


def sweep(engine: Engine, send: Send) -> int:
    """Advance every batch that should admit items or end but was not (the dispatch after a
    run's end failed, or a run of it was cancelled on its own); returns the runs started."""
    with transaction(engine) as session:
        due = batch_store.stalled(session)
    return sum(advance(engine, batch_id, send) for batch_id in due)
