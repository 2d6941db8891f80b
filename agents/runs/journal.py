"""The run's journal: everything one worker's attempt at a run reads and writes, durably.

The journal claims the run (with `run.started`), holds its lease, and makes each change the
loop records (a step started, a model output and its decision, a tool call started and its
result, a summary, the end) in one transaction on the run's row, locked and checked to be
ours (LeaseLost if another worker holds it now), with that change's events. Every operation is
retried while the database connection is down, and the model's through `retry(.., "model")`
(agents/runs/model_calls.py). A retry waits in `lease.pause`, so the lease stays renewed and a
cancel is heard; each backoff of a model outage appends a `run.waiting` event with a fixed
message, the exception itself, which may name hosts and ports, going to the log only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from agents import agent_store
from agents.records import Agent, ChatSession, PendingCall, Run, RunStatus, Step, ToolCallRecord
from agents.runs import approvals, fair_claim
from agents.runs import store as run_store
from agents.runs.events import (
    MessageDelta,
    RunStarted,
    RunWaiting,
    StepStarted,
    ToolSourceError,
    append_event,
)
from agents.runs.lease import RunLease
from agents.runs.retry import Backoff, Outage, OutageKind, retry_outages
from agents.runs.store import StepWrite
from agents.tables import RunRow
from core.db import is_transient_db_error, transaction

if TYPE_CHECKING:
    from agents.runs.executor import Services

log = logging.getLogger(__name__)
T = TypeVar("T")


class RunJournal:
    """The run as claimed by this attempt, with the means to record it."""

    def __init__(self, services: Services, run: Run, owner: str) -> None:
        self.services = services
        self.run = run
        self.owner = owner
        settings = services.settings
        self.lease = RunLease(services.engine, services.portal, run.id, owner, settings.run_lease_s)
        self.budgets: dict[OutageKind, Backoff] = {
            "model": Backoff(settings.model_retry_s),
            "database": Backoff(settings.db_retry_s),
        }

    @classmethod
    def claim(cls, services: Services, run_id: uuid.UUID, owner: str) -> RunJournal | None:
        """Claim a run and open its journal; None when there is nothing to run. The message is
        a ticket for one slot turn: with fair shares on, it takes the fairest claimable run of
        any tenant (agents/runs/fair_claim.py), else exactly `run_id`."""
        settings = services.settings
        take = fair_claim.claim if settings.worker_fair_share else run_store.claim

        def claim() -> Run | None:
            with transaction(services.engine) as session:
                run = take(session, run_id, owner, settings.run_lease_s)
                if run is not None:
                    append_event(session, run.tenant_id, run.id, RunStarted(run.attempts))
                return run

        budget: dict[OutageKind, Backoff] = {"database": Backoff(settings.db_retry_s)}
        run = retry_outages(claim, budget, lambda seconds, _outage, _n: time.sleep(seconds))
        if run is None:
            return None
        if run.id != run_id:
            log.info(
                "ticket for run %s ran run %s (tenant %s): fair share",
                run_id,
                run.id,
                run.tenant_id,
            )
        return cls(services, run, owner)

    # -- what the loop records -------------------------------------------------------------

    def load(self) -> tuple[Agent, ChatSession, list[Step]]:
        """The run's agent, its session, and the steps earlier attempts recorded."""
        run = self.run

        def load(session: Session) -> tuple[Agent, ChatSession, list[Step]]:
            agent = agent_store.get_agent(session, run.tenant_id, run.agent_id)
            chat = agent_store.get_session(session, run.tenant_id, run.session_id)
            return agent, chat, run_store.load_steps(session, run.id)

        return self.read(load)

    def start_step(self, step: int) -> bool:
        """Renew the lease and append step.started in one transaction (one commit per step);
        returns whether a cancel was requested."""
        data = StepStarted(step, self.run.attempts)

        def renew() -> bool:
            return self.lease.renew(
                lambda session: append_event(session, self.run.tenant_id, self.run.id, data)
            )

        return self.retry(renew, "database")

    def record_step(self, write: StepWrite) -> Step:
        """Persist a model output and what was decided about it (before acting on it)."""
        self.write(lambda session, row: run_store.record_step(session, row, write))
        return run_store.written_step(write, self.services.clock.now())

    def tools_started(self, step: int, call_ids: list[str]) -> None:
        """Mark calls started, with the lease renewed, in one committed transaction: from
        then on a later attempt knows they may have taken effect."""
        run_id = self.run.id

        def mark(session: Session) -> None:
            for call_id in call_ids:
                run_store.mark_started(session, run_id, step, call_id)

        self.retry(lambda: self.lease.renew(mark), "database")

    def record_tool_result(self, step: int, call: ToolCallRecord) -> None:
        """Persist a finished call's result and its tool.result event."""
        result = call.result or ""

        def write(session: Session, row: RunRow) -> None:
            run_store.record_tool_result(session, row, step, call.call_id, result, call.is_error)

        self.write(write)

    def save_summary(self, session_id: uuid.UUID, summary: str, through_seq: int) -> None:
        """Keep the session's new summary, folding in its messages up to `through_seq`."""
        self.write(
            lambda session, _row: agent_store.save_summary(
                session, session_id, summary, through_seq
            )
        )

    def finish(
        self,
        status: RunStatus,
        *,
        stop_reason: str,
        output: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """End the run (and record its batch item's outcome); returns the session's next
        queued run and the run's batch, to be sent on. A retry whose first commit went through
        meets LeaseLost (the run has ended): then the caller sends nothing, the sweeper does."""

        def finish(session: Session, row: RunRow) -> tuple[uuid.UUID | None, uuid.UUID | None]:
            run_store.finish(
                session, row, status, stop_reason=stop_reason, output=output, error=error
            )
            return run_store.next_queued(session, row.session_id), row.batch_id

        return self.write(finish)

    def require_action(self, step: int, calls: list[PendingCall], timeout_s: int) -> None:
        """Stop to wait for a human's decision on these calls (run.requires_action): the run
        leaves this worker, and a decision, or the wait's expiry, queues it again."""
        self.write(lambda session, row: approvals.pause(session, row, step, calls, timeout_s))

    def hand_back(self, outage: Outage) -> None:
        """Stop on purpose after a model outage outlasted its retries (run.released): the run
        stays running under a lease that lapses, and the sweeper sends it again."""
        self.write(
            lambda session, row: run_store.hand_back(session, row, outage.reason, outage.message)
        )

    def event(self, data: RunWaiting | MessageDelta | ToolSourceError) -> bool:
        """Append an event that reports no state change (provisional text, a wait); when the
        database is down it is dropped, with a log line, rather than holding the run up.
        Returns whether it was stored."""
        try:
            with transaction(self.services.engine) as session:
                run_store.owned(session, self.run.id, self.owner)
                append_event(session, self.run.tenant_id, self.run.id, data)
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise
            kind = data.TYPE
            log.info("run %s: %s event not stored: the database is unreachable", self.run.id, kind)
            return False
        return True

    # -- the means -------------------------------------------------------------------------

    def write(self, change: Callable[[Session, RunRow], T]) -> T:
        """`change` in one transaction on the run's locked row (LeaseLost if it is not ours
        any more), retried while the database connection is down."""

        def once() -> T:
            with transaction(self.services.engine) as session:
                return change(session, run_store.owned(session, self.run.id, self.owner))

        return self.retry(once, "database")

    def read(self, query: Callable[[Session], T]) -> T:
        """`query` in one transaction, retried while the database connection is down."""

        def once() -> T:
            with transaction(self.services.engine) as session:
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
            wait = round(seconds, 2)
            self.event(RunWaiting(outage.reason, outage.message, wait, self.run.attempts))
        self.lease.pause(seconds)
