"""SQL for batches and their items, and the retry policy applied when an item's run ends.

An item is `pending` until the batch admits it, `queued` while its run is queued or running
(the counts tell the two apart by the run's status), then `succeeded`, `failed` or
`cancelled`. A final item never changes again, which is what lets the results stream send each
one once. `record_outcome` runs inside `run_store.finish`, in the transaction that ends the
run, so an item's outcome is never lost between the run's end and its recording.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from agents.records import (
    FINAL_ITEM_STATUSES,
    Batch,
    BatchCounts,
    BatchItem,
    BatchStatus,
    ItemStatus,
    NewBatch,
    Usage,
)
from agents.tables import BatchItemRow, BatchRow, RunRow
from agents.webhooks import outbox
from core.errors import NotFound

RETRYABLE_ERRORS = frozenset({"worker_lost", "internal_error"})
"""Failures a new run may not repeat (a worker lost again and again, a bug met by chance).
The others would fail the same way again, so they are final at once: `invalid_model_output`,
`configuration_error`, an `incomplete` run's `max_steps`, and `model_error`, which a run only
ends with when the model rejected the request for good (a model server that is down makes the
run wait and resume instead, docs/agents.md)."""


def settle(
    run_status: str,
    error_type: str | None,
    *,
    attempts: int,
    max_attempts: int,
    cancel_requested: bool,
) -> ItemStatus:
    """The retry policy (pure): what an item becomes when its latest run ends. `pending` means
    it is tried again with a new run."""
    if run_status == "succeeded":
        return "succeeded"
    if run_status == "cancelled":
        return "cancelled"
    retry = run_status == "failed" and error_type in RETRYABLE_ERRORS
    if retry and attempts < max_attempts and not cancel_requested:
        return "pending"
    return "failed"


def record_outcome(session: Session, run: RunRow) -> None:
    """Record how a batch run ended on its item, in the caller's (the run's end) transaction.
    A run that is not its item's latest attempt is ignored."""
    item = session.scalar(
        select(BatchItemRow)
        .where(BatchItemRow.batch_id == run.batch_id, BatchItemRow.run_id == run.id)
        .with_for_update()
    )
    if item is None or item.status != "queued":
        return
    batch = session.get_one(BatchRow, item.batch_id)
    error = dict(run.error) if run.error is not None else None
    if run.status == "incomplete" and error is None:
        error = {"type": run.stop_reason or "incomplete", "message": "ended without an answer"}
    item.status = settle(
        run.status,
        error["type"] if error is not None else None,
        attempts=item.attempts,
        max_attempts=batch.max_attempts,
        cancel_requested=batch.cancel_requested,
    )
    item.output = run.output
    item.error = error
    item.prompt_tokens += run.prompt_tokens
    item.completion_tokens += run.completion_tokens
    item.cost_usd += run.cost_usd
    if item.status in FINAL_ITEM_STATUSES:
        item.finished_at = func.now()
    session.flush()


# -- writing ---------------------------------------------------------------------------------


def insert_batch(session: Session, tenant_id: uuid.UUID, new: NewBatch) -> uuid.UUID:
    """A running batch with its items, all pending; returns its id."""
    batch_id = uuid.uuid4()
    session.add(
        BatchRow(
            id=batch_id,
            tenant_id=tenant_id,
            agent_id=new.agent_id,
            status="running",
            concurrency=new.concurrency,
            max_attempts=new.max_attempts,
            metadata_=dict(new.metadata),
            webhook_url=new.webhook_url,
        )
    )
    session.flush()
    session.execute(
        insert(BatchItemRow),
        [
            {
                "batch_id": batch_id,
                "position": position,
                "tenant_id": tenant_id,
                "input": item.input,
                "user_id": item.user_id,
                "metadata_": dict(item.metadata),
                "status": "pending",
            }
            for position, item in enumerate(new.items)
        ],
    )
    return batch_id


def lock_batch(
    session: Session, batch_id: uuid.UUID, tenant_id: uuid.UUID | None = None
) -> BatchRow | None:
    """The batch's row, locked for the rest of the transaction (tenant-scoped when given)."""
    query = select(BatchRow).where(BatchRow.id == batch_id)
    if tenant_id is not None:
        query = query.where(BatchRow.tenant_id == tenant_id)
    return session.scalar(query.with_for_update())


def count_active(session: Session, batch_id: uuid.UUID) -> int:
    """Items with a queued or running run."""
    return (
        session.scalar(
            select(func.count())
            .select_from(BatchItemRow)
            .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "queued")
        )
        or 0
    )


def next_pending(session: Session, batch_id: uuid.UUID, limit: int) -> list[BatchItemRow]:
    """The first `limit` pending items in submission order (a retried item comes first)."""
    return list(
        session.scalars(
            select(BatchItemRow)
            .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "pending")
            .order_by(BatchItemRow.position)
            .limit(limit)
        ).all()
    )


def mark_queued(session: Session, item: BatchItemRow, run_id: uuid.UUID) -> None:
    """The item's new attempt is `run_id`."""
    item.status = "queued"
    item.run_id = run_id
    item.attempts += 1
    session.flush()


def cancel_pending(session: Session, batch_id: uuid.UUID) -> None:
    """Pending items are cancelled at once (they never got a run, or will not get another)."""
    session.execute(
        update(BatchItemRow)
        .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "pending")
        .values(status="cancelled", finished_at=func.now())
    )


def active_run_ids(session: Session, batch_id: uuid.UUID) -> list[uuid.UUID]:
    """The runs of the batch's queued and running items."""
    ids = session.scalars(
        select(BatchItemRow.run_id).where(
            BatchItemRow.batch_id == batch_id,
            BatchItemRow.status == "queued",
            BatchItemRow.run_id.is_not(None),
        )
    ).all()
    return [ident for ident in ids if ident is not None]


def finish_if_done(session: Session, batch: BatchRow) -> None:
    """End a locked running batch whose items are all final: cancelled if a cancel was asked
    for, else completed; its webhook deliveries are written with the end."""
    open_items = exists().where(
        BatchItemRow.batch_id == batch.id, BatchItemRow.status.in_(("pending", "queued"))
    )
    if batch.status == "running" and not session.scalar(select(open_items)):
        batch.status = "cancelled" if batch.cancel_requested else "completed"
        batch.finished_at = func.now()
        session.flush()
        counts, _usage = _summaries(session, [batch.id])[batch.id]
        outbox.enqueue_batch_end(session, batch, asdict(counts))  # in this transaction


# -- reading ---------------------------------------------------------------------------------


def _shown_status() -> Any:
    """An item's status as shown: `queued` splits into queued and running by its run."""
    return case(
        (and_(BatchItemRow.status == "queued", RunRow.status == "running"), "running"),
        else_=BatchItemRow.status,
    )


def _summaries(
    session: Session, batch_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[BatchCounts, Usage]]:
    shown = _shown_status().label("shown")
    rows = session.execute(
        select(
            BatchItemRow.batch_id,
            shown,
            func.count(),
            func.sum(BatchItemRow.prompt_tokens),
            func.sum(BatchItemRow.completion_tokens),
            func.sum(BatchItemRow.cost_usd),
        )
        .outerjoin(RunRow, RunRow.id == BatchItemRow.run_id)
        .where(BatchItemRow.batch_id.in_(batch_ids))
        .group_by(BatchItemRow.batch_id, shown)
    ).all()
    counts: dict[uuid.UUID, dict[str, int]] = {ident: {} for ident in batch_ids}
    usage: dict[uuid.UUID, list[float]] = {ident: [0, 0, 0.0] for ident in batch_ids}
    for batch_id, status, n, prompt, completion, cost in rows:
        counts[batch_id][status] = n
        totals = usage[batch_id]
        totals[0] += prompt or 0
        totals[1] += completion or 0
        totals[2] += cost or 0.0
    return {
        ident: (
            BatchCounts(**counts[ident]),
            Usage(
                prompt_tokens=int(usage[ident][0]),
                completion_tokens=int(usage[ident][1]),
                cost_usd=float(usage[ident][2]),
            ),
        )
        for ident in batch_ids
    }


def _batch(row: BatchRow, counts: BatchCounts, usage: Usage) -> Batch:
    status: BatchStatus = "running"
    if row.status in ("completed", "cancelled"):
        status = "completed" if row.status == "completed" else "cancelled"
    return Batch(
        id=row.id,
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        status=status,
        concurrency=row.concurrency,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
        metadata=dict(row.metadata_),
        webhook_url=row.webhook_url,
        counts=counts,
        usage=usage,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def get_batch(session: Session, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
    """One batch with its counts and usage, or NotFound."""
    row = session.scalar(
        select(BatchRow).where(BatchRow.id == batch_id, BatchRow.tenant_id == tenant_id)
    )
    if row is None:
        raise NotFound("batch", str(batch_id))
    return _batch(row, *_summaries(session, [row.id])[row.id])


def list_batches(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Batch]:
    """Batches newest first, `limit` of them after the (created_at, id) cursor."""
    query = select(BatchRow).where(BatchRow.tenant_id == tenant_id)
    if before is not None:
        query = query.where(
            (BatchRow.created_at < before[0])
            | ((BatchRow.created_at == before[0]) & (BatchRow.id < before[1]))
        )
    rows = session.scalars(
        query.order_by(BatchRow.created_at.desc(), BatchRow.id.desc()).limit(limit)
    ).all()
    summaries = _summaries(session, [row.id for row in rows])
    return [_batch(row, *summaries[row.id]) for row in rows]


def _item(row: BatchItemRow) -> BatchItem:
    return BatchItem(
        batch_id=row.batch_id,
        position=row.position,
        input=row.input,
        user_id=row.user_id,
        metadata=dict(row.metadata_),
        status=row.status,  # type: ignore[arg-type]  # the column only holds ItemStatus values
        attempts=row.attempts,
        run_id=row.run_id,
        output=row.output,
        error=dict(row.error) if row.error is not None else None,
        usage=Usage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=row.cost_usd,
        ),
        finished_at=row.finished_at,
    )


def finished_items(
    session: Session,
    tenant_id: uuid.UUID,
    batch_id: uuid.UUID,
    *,
    after: int = -1,
    skip: Collection[int] = (),
    limit: int = 100,
) -> list[BatchItem]:
    """Final items with a position above `after` and not in `skip`, in position order."""
    query = select(BatchItemRow).where(
        BatchItemRow.tenant_id == tenant_id,
        BatchItemRow.batch_id == batch_id,
        BatchItemRow.status.in_(FINAL_ITEM_STATUSES),
        BatchItemRow.position > after,
    )
    if skip:
        query = query.where(BatchItemRow.position.not_in(list(skip)))
    rows = session.scalars(query.order_by(BatchItemRow.position).limit(limit)).all()
    return [_item(row) for row in rows]


def stalled(session: Session, *, limit: int = 100) -> list[uuid.UUID]:
    """Running batches that should admit items or end but apparently will not (the dispatch
    after a run's end failed): pending items and a free slot, or nothing left open."""
    active = (
        select(func.count())
        .select_from(BatchItemRow)
        .where(BatchItemRow.batch_id == BatchRow.id, BatchItemRow.status == "queued")
        .scalar_subquery()
    )
    pending = exists().where(BatchItemRow.batch_id == BatchRow.id, BatchItemRow.status == "pending")
    open_items = exists().where(
        BatchItemRow.batch_id == BatchRow.id, BatchItemRow.status.in_(("pending", "queued"))
    )
    ids = session.scalars(
        select(BatchRow.id)
        .where(
            BatchRow.status == "running",
            or_(and_(pending, active < BatchRow.concurrency), ~open_items),
        )
        .order_by(BatchRow.created_at)
        .limit(limit)
    ).all()
    return list(ids)
