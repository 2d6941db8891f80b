"""Finds runs no worker is executing and sends them to the queue again.

A run whose worker died keeps status `running` with a lease that lapses, and so does a run an
attempt handed back after an outage outlasted its retries (agents/runs/executor.py): the lapse is
the pause before its next attempt. A run whose queue message was lost (the API died between
commit and send, a broker restart) stays `queued`.
Every worker calls `sweep_once` periodically (agents.worker.main); `FOR UPDATE SKIP LOCKED` and
the re-stamped `enqueued_at` keep several workers from sending one run twice in an interval, and
a duplicate message is harmless anyway: only one worker can claim a run. It also advances
batches that should admit items but were not advanced when one of their runs ended
(agents/batches/lifecycle.py), and queues runs whose wait for a human's approval expired, their
pending calls denied (agents/runs/approvals.py).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from agents.batches import lifecycle as batches
from agents.metrics import SWEEPER_REQUEUES
from agents.runs import approvals
from agents.runs import store as run_store
from agents.worker.queue import RunSender
from core.db import transaction

log = logging.getLogger(__name__)


# A queued run may simply be waiting for a free worker; it is re-sent only after this long
# (or six sweep intervals, if longer), so a busy queue is not flooded with duplicates.
QUEUED_RESEND_S = 60.0


def sweep_once(engine: Engine, queue: RunSender, interval_s: float) -> int:
    """One pass; returns how many runs were sent (again, or newly started for a batch)."""
    with transaction(engine) as session:
        due = run_store.due_for_requeue(
            session,
            resend_after_s=interval_s,
            queued_after_s=max(QUEUED_RESEND_S, 6 * interval_s),
        )
    with transaction(engine) as session:
        expired = approvals.expire_due(session)
    for run_id in [*due, *expired]:
        queue.enqueue_run(run_id)
    SWEEPER_REQUEUES.labels("lost").inc(len(due))
    SWEEPER_REQUEUES.labels("expired_approval").inc(len(expired))
    if due:
        log.info("sweeper re-queued %d run(s): %s", len(due), ", ".join(map(str, due)))
    if expired:
        log.info("sweeper denied the pending calls of %d run(s) whose wait expired", len(expired))
    started = batches.sweep(engine, queue.enqueue_run)
    SWEEPER_REQUEUES.labels("batch").inc(started)
    if started:
        log.info("sweeper started %d run(s) of stalled batches", started)
    return len(due) + len(expired) + started
