"""Fair shares of the workers' slots between tenants: a queue message is a ticket for one slot
turn, not a binding to the run it names.

The queue is FIFO, so when tenant A has 200 runs queued, the message of tenant B's one
interactive run sits behind 200 of A's. A worker thread that takes a message naming run X
therefore claims the fairest claimable run instead of exactly X (`claim` below): among the runs
`run_store.claim` could take (queued, or running with a lapsed lease, and not behind an
earlier active run of their session), one of the tenant that has

1. the fewest runs running under a live lease (slots in use now), then
2. the oldest latest start (`max(started_at)` of its runs; never started comes first), so that
   tenants take turns even where the slots are free between claims: with one slot, or claims
   made one after another, every tenant has 0 running at each claim and rule 1 alone would
   leave the FIFO order as it was;

ties prefer X itself, then the oldest run. B's run therefore starts at the next slot that
frees: it waits one slot's turn, not A's backlog. Within one tenant a ticket still runs its own
run whenever it can, as before.

Invariant: there are at least as many tickets outstanding (messages not yet taken) as
claimable runs, so every claimable run is eventually taken by some ticket:
- a run becomes claimable with a ticket sent for it: created unblocked (the API, after commit),
  unblocked when the run ahead of it ends (the executor sends the session's next run), admitted
  by its batch (agents/batches/lifecycle.py); and a lease lapses only to be resent by the sweeper;
- a ticket that claims consumes one ticket and one claimable run, whichever run it names;
- a ticket that finds nothing claimable consumes a ticket while there is no claimable run.
  Rows locked by concurrent claimers are skipped (`FOR UPDATE SKIP LOCKED`), so a ticket that
  finds only locked candidates waits a moment and looks again before it gives up;
- tickets for runs that are no longer claimable (a duplicate from the sweeper, a cancelled or
  finished run, a run queued behind its session's active one) are surplus, which is harmless.
Where a send is lost or a ticket gives up while a row stays locked, the sweeper resends the
runs queued too long (agents/worker/sweeper.py), as it always did. Because a ticket may take another
run than its own, the runs of a tenant's sessions and batches start in the same order and under
the same conditions as before (the claim itself is `run_store.claim`), only interleaved with
other tenants'.

The selection stays cheap with many queued runs: it walks the tenants that have active runs
(a skip scan: one index probe per tenant, migration 0012), takes at most `HEADS_PER_TENANT`
oldest claimable runs of each (the walk in created_at order stops at the first ones that are
not blocked), and only then ranks tenants, two index probes each. Its cost grows with the
number of tenants that have work, not with the number of queued runs.
"""

# ruff: noqa: S608 - the SQL is joined from constant fragments; every value is a bound parameter

from __future__ import annotations

import logging
import time
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from agents.records import Run
from agents.runs import store as run_store

log = logging.getLogger(__name__)

HEADS_PER_TENANT = 8
"""Oldest claimable runs considered per tenant: concurrent claimers of one tenant each find an
unlocked one among them."""

LOCKED_RETRIES = 5
"""How often a ticket that found only rows locked by concurrent claimers looks again."""

LOCKED_PAUSE_S = 0.02
"""The pause before it does (a concurrent claim commits within milliseconds)."""

_CLAIMABLE = """
           r.status IN ('queued', 'running')
       AND (r.status = 'queued' OR r.lease_expires_at < now())
       AND NOT EXISTS (
           SELECT 1 FROM runs e
            WHERE e.session_id = r.session_id
              AND e.created_at < r.created_at
              AND e.status IN ('queued', 'running', 'requires_action'))"""

# What run_store.claim could take, as a few candidates per tenant (and the ticket's own run).
_HEADS = f"""
WITH RECURSIVE tenants(tenant_id) AS (
    (SELECT tenant_id FROM runs
      WHERE status IN ('queued', 'running')
      ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT n.tenant_id FROM runs n
             WHERE n.status IN ('queued', 'running') AND n.tenant_id > t.tenant_id
             ORDER BY n.tenant_id LIMIT 1)
      FROM tenants t
     WHERE t.tenant_id IS NOT NULL
),
heads AS (
    SELECT h.id, h.tenant_id, h.created_at
      FROM tenants t
     CROSS JOIN LATERAL (
        SELECT r.id, r.tenant_id, r.created_at FROM runs r
         WHERE r.tenant_id = t.tenant_id AND {_CLAIMABLE}
         ORDER BY r.created_at
         LIMIT :heads
     ) h
    UNION
    SELECT r.id, r.tenant_id, r.created_at FROM runs r WHERE r.id = :ticket AND {_CLAIMABLE}
)"""

# The candidates, fairest first (read without locks).
_RANKED = text(
    _HEADS
    + """,
standing AS (
    SELECT c.tenant_id,
           (SELECT count(*) FROM runs n
             WHERE n.tenant_id = c.tenant_id AND n.status = 'running'
               AND n.lease_expires_at >= now()) AS running,
           (SELECT max(n.started_at) FROM runs n
             WHERE n.tenant_id = c.tenant_id AND n.started_at IS NOT NULL) AS served_at
      FROM (SELECT DISTINCT tenant_id FROM heads) c
)
SELECT h.id
  FROM heads h
  JOIN standing s ON s.tenant_id = h.tenant_id
 ORDER BY s.running, s.served_at NULLS FIRST, h.id = :ticket DESC, h.created_at"""
)

# One candidate, locked unless another transaction holds it. A row that changed since the
# ranking is re-read and re-checked here, so a run claimed meanwhile is passed over.
_LOCK = text(
    """
SELECT id FROM runs
 WHERE id = :run AND (status = 'queued' OR (status = 'running' AND lease_expires_at < now()))
   FOR UPDATE SKIP LOCKED"""
)


def rank(session: Session, ticket: uuid.UUID) -> list[uuid.UUID]:
    """The claimable runs worth considering for this ticket, fairest first: at most
    `HEADS_PER_TENANT` of each tenant that has any, and the ticket's own run if claimable."""
    params = {"ticket": ticket, "heads": HEADS_PER_TENANT}
    return list(session.scalars(_RANKED, params))


def pick(session: Session, ticket: uuid.UUID) -> uuid.UUID | None:
    """The fairest claimable run for this ticket, row-locked in the caller's transaction;
    None when there is none. Candidates locked by concurrent claimers are skipped; when all of
    them are, it looks again a few times (`LOCKED_RETRIES`) before it gives up."""
    for _ in range(LOCKED_RETRIES + 1):
        candidates = rank(session, ticket)
        if not candidates:
            return None
        for run_id in candidates:
            locked: uuid.UUID | None = session.scalar(_LOCK, {"run": run_id})
            if locked is not None:
                return locked
        time.sleep(LOCKED_PAUSE_S)  # all being claimed by others: look again once they are
    log.warning("ticket %s: every claimable run stayed locked; the sweeper resends", ticket)
    return None


def claim(session: Session, ticket: uuid.UUID, owner: str, lease_s: float) -> Run | None:
    """Take the fairest claimable run for this worker on a ticket naming run `ticket` (which
    it prefers among equals); None when nothing is claimable. The claim is `run_store.claim`
    on the chosen run, under its row lock, so the conditions are exactly that function's."""
    chosen = pick(session, ticket)
    return run_store.claim(session, chosen, owner, lease_s) if chosen is not None else None
