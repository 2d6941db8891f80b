"""Keeps the tables that grow with every run from growing forever.

What it removes, each after its retention setting (core/config.py, docs/operations.md):
- consumed messages of the database broker: kombu's SQLAlchemy transport marks a message it
  hands out invisible and never deletes it (a message not acknowledged is put back as a new
  row by kombu itself); pending messages are never touched;
- the token deltas (`message.delta`) of runs that ended: provisional by design (agents/events),
  and the answer is in the run, its `message` event and the session; the lifecycle events stay;
- the recorded context of each step (a whole prompt) of runs that ended, emptied to `[]`;
- idempotency keys of create requests older than a day (core/idempotency.py);
- webhook deliveries that were delivered or given up, with their attempts, after some days
  (pending ones never);
- core memory block versions older than the newest N of each block (the block-history route
  shows what is left; the newest is the block's value), except one an active run's tool call
  wrote, which that call's retry looks up (memory.blocks `edit_key`).

No run that is queued or running is touched. Every statement handles at most `batch_rows`
rows, locking them with SKIP LOCKED, in a transaction of its own, so a pass never holds many
locks or blocks a worker for long. Every worker calls `Cleaner.run_once` periodically
(agents.worker.main); a session advisory try-lock lets one of them do a pass at a time and the
others skip theirs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, TextClause, text

from agents.records import ACTIVE_STATUSES, FINAL_STATUSES
from agents.runs.events import TERMINAL_TYPES
from core import idempotency
from core.config import Settings

log = logging.getLogger(__name__)

LOCK_ID = 0x616D5F636C65616E  # "am_clean": one pass at a time across workers
MAX_BATCHES = 100
"""Statements per kind in one pass: a backlog is worked off over several passes."""
EMPTY_CONTEXT_BYTES = 16
"""A step context stored in fewer bytes is already empty (`[]`); pg_column_size reads the
stored size without fetching a prompt out of TOAST."""

# kombu's timestamps are naive local times of the process that took the message (a worker),
# so the cut-off is computed on the worker's clock too, not the database's.
_BROKER = text(
    """
    DELETE FROM kombu_message WHERE id IN (
        SELECT id FROM kombu_message
        WHERE visible = false AND (timestamp IS NULL OR timestamp < :before)
        ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED
    )
    """
)
_DELTAS = text(
    """
    WITH doomed AS (
        SELECT e.run_id, e.seq FROM run_events e JOIN runs r ON r.id = e.run_id
        WHERE e.type = 'message.delta'
          AND r.status = ANY(:final)
          AND r.finished_at < now() - make_interval(secs => :after_s)
          AND EXISTS (
              SELECT 1 FROM run_events t WHERE t.run_id = r.id AND t.type = ANY(:terminal)
          )
        LIMIT :n FOR UPDATE OF e SKIP LOCKED
    )
    DELETE FROM run_events e USING doomed d WHERE e.run_id = d.run_id AND e.seq = d.seq
    """
)
_CONTEXTS = text(
    """
    WITH doomed AS (
        SELECT s.run_id, s.step FROM run_steps s JOIN runs r ON r.id = s.run_id
        WHERE pg_column_size(s.context) > :empty_bytes
          AND s.created_at < now() - make_interval(secs => :after_s)
          AND r.status = ANY(:final)
        LIMIT :n FOR UPDATE OF s SKIP LOCKED
    )
    UPDATE run_steps s SET context = '[]'::jsonb
    FROM doomed d WHERE s.run_id = d.run_id AND s.step = d.step
    """
)
_VERSIONS = text(
    """
    WITH doomed AS (
        SELECT v.block_id, v.version FROM memory_block_versions v
        JOIN memory_blocks b ON b.id = v.block_id
        WHERE v.version <= b.version - :keep
          AND (v.edit_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM runs r
              WHERE r.status = ANY(:active)
                AND CAST(coalesce(r.lineage_id, r.id) AS text) = split_part(v.edit_key, ':', 1)
          ))
        LIMIT :n FOR UPDATE OF v SKIP LOCKED
    )
    DELETE FROM memory_block_versions v USING doomed d
    WHERE v.block_id = d.block_id AND v.version = d.version
    """
)
_DELIVERIES = text(
    """
    DELETE FROM webhook_deliveries WHERE id IN (
        SELECT id FROM webhook_deliveries
        WHERE status IN ('succeeded', 'failed')
          AND created_at < now() - make_interval(secs => :after_s)
        LIMIT :n FOR UPDATE SKIP LOCKED
    )
    """
)
_KEYS = text(
    """
    DELETE FROM idempotency_keys WHERE (tenant_id, key) IN (
        SELECT tenant_id, key FROM idempotency_keys
        WHERE created_at < now() - make_interval(secs => :after_s)
        LIMIT :n FOR UPDATE SKIP LOCKED
    )
    """
)
_FINAL = list(FINAL_STATUSES)
_ACTIVE = list(ACTIVE_STATUSES)
_TERMINAL = sorted(TERMINAL_TYPES)


@dataclass
class Cleaned:
    """What one pass removed."""

    broker_messages: int = 0
    """Consumed broker messages deleted."""
    delta_events: int = 0
    """Token-delta events of ended runs deleted."""
    step_contexts: int = 0
    """Step contexts emptied."""
    block_versions: int = 0
    """Old block versions deleted."""
    webhook_deliveries: int = 0
    """Ended webhook deliveries deleted (with their attempts)."""
    idempotency_keys: int = 0
    """Idempotency keys past their day deleted."""
    skipped: bool = False
    """Another worker held the pass."""

    @property
    def total(self) -> int:
        """Rows changed in all."""
        return sum(getattr(self, f.name) for f in fields(self) if f.name != "skipped")


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept (None: forever); see the `retention_*` settings."""

    batch_rows: int = 1000
    """Rows per statement."""
    broker_consumed_s: float | None = 300.0
    """Age of a consumed broker message before it is deleted."""
    delta_events_s: float | None = 60.0
    """Time since a run ended before its token deltas are deleted."""
    step_context_s: float | None = 7 * 86_400.0
    """Age of a step of an ended run before its context is emptied."""
    block_versions: int | None = 50
    """Newest versions kept per block."""
    webhook_deliveries_s: float | None = 7 * 86_400.0
    """Age of a delivered or failed webhook delivery before it is deleted."""

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        """The retention the settings ask for."""
        days = settings.retention_step_context_days
        hooks = settings.retention_webhook_deliveries_days
        return cls(
            batch_rows=settings.retention_batch_rows,
            broker_consumed_s=settings.retention_broker_consumed_s,
            delta_events_s=settings.retention_delta_events_s,
            step_context_s=None if days is None else days * 86_400.0,
            block_versions=settings.retention_block_versions,
            webhook_deliveries_s=(None if hooks is None else hooks * 86_400.0),
        )


class Cleaner:
    """Deletes and compacts what the retention allows, in bounded batches."""

    def __init__(self, engine: Engine, retention: Retention) -> None:
        self._engine = engine
        self.retention = retention
        """What it keeps."""

    def run_once(self) -> Cleaned:
        """One pass over every kind (skipped while another worker is in one)."""
        cleaned = Cleaned()
        with self._engine.connect() as conn:
            locked = conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": LOCK_ID})
            got = bool(locked.scalar())
            conn.commit()
            if not got:
                cleaned.skipped = True
                return cleaned
            try:
                self._pass(conn, cleaned)
            finally:
                conn.rollback()  # a failed batch leaves its transaction open
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
                conn.commit()
        if cleaned.total:
            log.info("cleaner: %s", cleaned)
        return cleaned

    def _pass(self, conn: Connection, cleaned: Cleaned) -> None:
        keep = self.retention
        if keep.broker_consumed_s is not None and _has_table(conn, "kombu_message"):
            before = datetime.now() - timedelta(seconds=keep.broker_consumed_s)
            cleaned.broker_messages = self._batches(conn, _BROKER, {"before": before})
        if keep.delta_events_s is not None:
            deltas = {"after_s": keep.delta_events_s, "final": _FINAL, "terminal": _TERMINAL}
            cleaned.delta_events = self._batches(conn, _DELTAS, deltas)
        if keep.step_context_s is not None:
            contexts = {
                "after_s": keep.step_context_s,
                "final": _FINAL,
                "empty_bytes": EMPTY_CONTEXT_BYTES,
            }
            cleaned.step_contexts = self._batches(conn, _CONTEXTS, contexts)
        if keep.block_versions is not None:
            old = {"keep": keep.block_versions, "active": _ACTIVE}
            cleaned.block_versions = self._batches(conn, _VERSIONS, old)
        if keep.webhook_deliveries_s is not None:
            hooks = {"after_s": keep.webhook_deliveries_s}
            cleaned.webhook_deliveries = self._batches(conn, _DELIVERIES, hooks)
        cleaned.idempotency_keys = self._batches(conn, _KEYS, {"after_s": idempotency.KEPT_S})

    def _batches(
        self, conn: Connection, statement: TextClause, params: Mapping[str, object]
    ) -> int:
        """Run `statement` in short transactions until it finds less than a full batch."""
        n = self.retention.batch_rows
        done = 0
        for _ in range(MAX_BATCHES):
            changed = conn.execute(statement, {**params, "n": n}).rowcount
            conn.commit()
            done += changed
            if changed < n:
                break
        return done


def _has_table(conn: Connection, name: str) -> bool:
    """Whether the table exists (kombu creates its tables on first use; Redis needs none)."""
    found = conn.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}).scalar()
    conn.commit()
    return bool(found)
