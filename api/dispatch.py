"""Changes to runs that the queue must hear about: write in one transaction, send after commit.

A worker that received a run id before its row was committed would find nothing to do, so the
queue is only ever told after the commit. If the send itself fails (broker down), the run stays
`queued` and the workers' sweeper (agents/worker/sweeper.py) sends it later: the request still
succeeds, because the run is durable.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from agents.batches import lifecycle as batches
from agents.records import CallDecision, Run
from agents.runs import approvals
from agents.runs import store as run_store
from agents.runs.store import NewRun
from agents.worker.queue import RunSender, send_committed
from core.db import transaction

log = logging.getLogger(__name__)


def start_run(
    engine: Engine,
    queue: RunSender,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    content: str,
    *,
    queue_behind: bool,
    idempotency_key: str | None,
    metadata: Mapping[str, Any],
    webhook_url: str | None = None,
) -> NewRun:
    """Write the user message and its queued run; send it unless it waits behind the
    session's active run or is an idempotent retry (which is never sent twice)."""
    with transaction(engine) as session:
        new = run_store.create_run(
            session,
            tenant_id,
            session_id,
            content,
            queue=queue_behind,
            idempotency_key=idempotency_key,
            metadata=metadata,
            webhook_url=webhook_url,
        )
    if new.created and new.start_now:
        send_committed(queue.enqueue_run, [new.run.id])
    return new


def cancel_run(engine: Engine, queue: RunSender, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    """Ask the run to stop. A queued run ends here and now, so nobody else will start the run
    queued behind it in its session: send that one."""
    with transaction(engine) as session:
        run = run_store.request_cancel(session, tenant_id, run_id)
        following = (
            run_store.next_queued(session, run.session_id) if run.status == "cancelled" else None
        )
    if following is not None:
        send_committed(queue.enqueue_run, [following], "the session's next run")
    if run.status == "cancelled" and run.batch_id is not None:
        # The item ended here, not in a worker: admit the batch's next item now.
        try:
            batches.advance(engine, run.batch_id, queue.enqueue_run)
        except Exception:
            log.exception("batch %s not advanced; the sweeper will", run.batch_id)
    return run


def approve(
    engine: Engine,
    queue: RunSender,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    decisions: list[CallDecision],
) -> Run:
    """Record decisions on a waiting run's calls; once none is pending, the run is queued
    and sent (after the commit) to any worker."""
    with transaction(engine) as session:
        resumed = approvals.decide(session, tenant_id, run_id, decisions)
        run = run_store.get_run(session, tenant_id, run_id)
    if resumed:
        send_committed(queue.enqueue_run, [run_id])
    return run
