"""One worker's attempt at one run: its lease, and its I/O made to ride out outages.

Every database write of the attempt goes through `write` (the run's row locked and checked to
be ours, the transaction retried while the connection is down); every model call through
`model` (retried while the model server is unavailable, its text streamed as message.delta
events). A retry waits in `lease.pause`, so the lease stays renewed and a cancel is heard. Each
backoff of a model outage appends a `run.waiting` event with a fixed message; the exception
itself, which may name hosts and ports, goes to the log with the run id only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from agents.errors import LeaseLost
from agents.records import Run
from agents.runs import store as run_store
from agents.runs.events import append_event
from agents.runs.lease import RunLease
from agents.runs.retry import Backoff, Outage, OutageKind, retry_outages
from agents.tables import RunRow
from core.db import is_transient_db_error, transaction
from inference.client.model_client import ChatRequest, ChatResult

if TYPE_CHECKING:
    from agents.runs.executor import Services

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Deltas:
    """Text pieces from the model's stream, gathered on the loop thread, flushed by the run's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[str] = []

    def add(self, piece: str) -> None:
        with self._lock:
            self._pieces.append(piece)

    def take(self) -> str:
        with self._lock:
            text, self._pieces = "".join(self._pieces), []
        return text

    def put_back(self, text: str) -> None:
        with self._lock:
            self._pieces.insert(0, text)


class Attempt:
    """The run as claimed by this attempt, with the means to do its I/O."""

    def __init__(self, services: Services, run: Run, owner: str) -> None:
        self.s = services
        self.run = run
        self.owner = owner
        settings = services.settings
        self.lease = RunLease(services.engine, services.portal, run.id, owner, settings.run_lease_s)
        self.budgets: dict[OutageKind, Backoff] = {
            "model": Backoff(settings.model_retry_s),
            "database": Backoff(settings.db_retry_s),
        }

    # -- the database ----------------------------------------------------------------------

    def write(self, change: Callable[[Session, RunRow], T]) -> T:
        """`change` in one transaction on the run's locked row (LeaseLost if it is not ours
        any more), retried while the database connection is down."""

        def once() -> T:
            with transaction(self.s.engine) as session:
                return change(session, run_store.owned(session, self.run.id, self.owner))

        return self.retry(once, "database")

    def read(self, query: Callable[[Session], T]) -> T:
        """`query` in one transaction, retried while the database connection is down."""

        def once() -> T:
            with transaction(self.s.engine) as session:
                return query(session)

        return self.retry(once, "database")

    def retry(self, operation: Callable[[], T], *kinds: OutageKind) -> T:
        """`operation`, retried through outages of these kinds within their budgets."""
        budgets = {kind: self.budgets[kind] for kind in kinds}
        return retry_outages(operation, budgets, self._pause)

    def _pause(self, seconds: float, outage: Outage, failures: int) -> None:
        cause = "" if outage.kind == "database" else f" ({outage.reason})"
        log.warning(
            "run %s: %s%s; retry %d in %.1f s",
            self.run.id,
            outage.message,
            cause,
            failures,
            seconds,
        )
        if outage.kind == "model":
            data = {
                "reason": outage.reason,
                "message": outage.message,
                "retry_in_s": round(seconds, 2),
                "attempt": self.run.attempts,
            }
            self.event("run.waiting", data)
        self.lease.pause(seconds)

    def event(self, type_: str, data: dict[str, Any]) -> None:
        """Append an event that reports no state change (provisional text, a wait): dropped,
        with a log line, when the database is down rather than holding the run up."""
        try:
            with transaction(self.s.engine) as session:
                run_store.owned(session, self.run.id, self.owner)
                append_event(session, self.run.tenant_id, self.run.id, type_, data)
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise
            log.info("run %s: %s event dropped: the database is unreachable", self.run.id, type_)

    def start_step(self, step: int) -> bool:
        """Renew the lease and append step.started in one transaction (one commit per step);
        returns whether a cancel was requested."""
        data = {"step": step, "attempt": self.run.attempts}

        def renew() -> bool:
            return self.lease.renew(
                lambda session: append_event(
                    session, self.run.tenant_id, self.run.id, "step.started", data
                )
            )

        return self.retry(renew, "database")

    # -- the model -------------------------------------------------------------------------

    def model(self, request: ChatRequest, *, stream_step: int | None = None) -> ChatResult:
        """Call the model, waiting out its outages; with `stream_step`, its text streams out
        as message.delta events (a retried call streams again after its run.waiting event)."""
        return self.retry(lambda: self._call_once(request, stream_step), "model")

    def _call_once(self, request: ChatRequest, stream_step: int | None) -> ChatResult:
        if stream_step is None:
            return self.lease.wait(self.s.model.complete(request), cancellable=True)
        deltas = _Deltas()

        def flush() -> None:
            text = deltas.take()
            if not text:
                return
            data = {"step": stream_step, "attempt": self.run.attempts, "delta": text}
            try:
                with transaction(self.s.engine) as session:
                    run_store.owned(session, self.run.id, self.owner)
                    append_event(session, self.run.tenant_id, self.run.id, "message.delta", data)
            except Exception as exc:
                if not is_transient_db_error(exc):
                    raise
                deltas.put_back(text)  # sent with the next flush, once the database is back

        try:
            return self.lease.wait(
                self.s.model.complete(request, deltas.add), cancellable=True, tick=flush
            )
        finally:
            try:
                flush()
            except LeaseLost:  # the call's own outcome matters more than its last deltas
                log.info("run %s: the last deltas of step %s not stored", self.run.id, stream_step)
