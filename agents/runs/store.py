"""SQL for runs: creation, the worker's lease, persisted steps and tool calls, the end.

A worker owns a run through a lease (`lease_owner`, `lease_expires_at`) it renews while it
works. Every write of a worker checks, under the run's row lock, that it still holds the lease,
so a worker that stalled past its lease can never write over the one that took the run over.

The executor retries a write whose connection dropped, and the first try may have committed
after all: `record_step`, `mark_started` and `record_tool_result` are idempotent for that.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import and_, exists, func, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from agents import agent_store
from agents.batches import store as batch_store
from agents.errors import IdempotencyKeyReused, LeaseLost, SessionBusy
from agents.records import (
    ACTIVE_STATUSES,
    ApprovalState,
    CalledTool,
    Message,
    Run,
    RunFilter,
    RunStatus,
    Step,
    StepDecision,
    StepOutput,
    ToolCallRecord,
    Usage,
)
from agents.runs import approvals
from agents.runs.events import (
    Answer,
    RunFinished,
    RunQueued,
    RunReleased,
    ToolCalled,
    ToolFinished,
    append_event,
)
from agents.tables import (
    AgentRow,
    BatchRow,
    MessageRow,
    RunRow,
    SessionRow,
    StepRow,
    ToolCallRow,
)
from core.errors import NotFound


def run_record(row: RunRow) -> Run:
    """The public form of a run row."""
    return Run(
        id=row.id,
        tenant_id=row.tenant_id,
        session_id=row.session_id,
        agent_id=row.agent_id,
        status=row.status,  # type: ignore[arg-type]  # the column only holds RunStatus values
        input=row.input,
        output=row.output,
        stop_reason=row.stop_reason,
        error=dict(row.error) if row.error is not None else None,
        steps=row.steps,
        usage=Usage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=row.cost_usd,
        ),
        cancel_requested=row.cancel_requested,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        batch_id=row.batch_id,
        metadata=dict(row.metadata_),
        outage_yields=row.outage_yields,
        previous_run_id=row.previous_run_id,
        lineage_id=row.lineage_id,
        webhook_url=row.webhook_url,
    )


def request_hash(
    session_id: uuid.UUID, content: str, queue: bool, metadata: Any, webhook_url: str | None = None
) -> str:
    """Fingerprint of a message request, to tell an idempotent retry from a reused key."""
    fields: list[Any] = [str(session_id), content, queue, metadata]
    if webhook_url is not None:  # left out otherwise: earlier requests' prints stay valid
        fields.append(webhook_url)
    body = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class NewRun:
    """What creating a message produced."""

    run: Run
    """The run (new, or the earlier one of an idempotent retry)."""
    created: bool
    """False when an Idempotency-Key matched an earlier request."""
    start_now: bool
    """True when it should be enqueued now (False: it waits behind the session's active run)."""


def _by_key(session: Session, tenant_id: uuid.UUID, key: str) -> RunRow | None:
    return session.scalar(
        select(RunRow).where(RunRow.tenant_id == tenant_id, RunRow.idempotency_key == key)
    )


def _active_run(session: Session, session_id: uuid.UUID) -> RunRow | None:
    return session.scalar(
        select(RunRow)
        .where(RunRow.session_id == session_id, RunRow.status.in_(ACTIVE_STATUSES))
        .order_by(RunRow.created_at)
        .limit(1)
    )


_KEY_CONSTRAINT = "uq_runs_tenant_idempotency_key"  # migration 0004


def _hold_agent(session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Key-share lock the session's agent, or NotFound (session or agent)."""
    agent_id = session.scalar(
        select(SessionRow.agent_id).where(
            SessionRow.id == session_id, SessionRow.tenant_id == tenant_id
        )
    )
    if agent_id is None:
        raise NotFound("session", str(session_id))
    held = session.scalar(
        select(AgentRow.id).where(AgentRow.id == agent_id).with_for_update(key_share=True)
    )
    if held is None:  # deleted by a transaction that committed while this one waited
        raise NotFound("agent", str(agent_id))


def _is_key_clash(exc: IntegrityError) -> bool:
    """Whether the insert broke the idempotency key's uniqueness (and nothing else)."""
    cause = exc.orig
    return (
        isinstance(cause, psycopg.errors.UniqueViolation)
        and cause.diag.constraint_name == _KEY_CONSTRAINT
    )


def _vanished(session: Session, row: RunRow) -> NotFound | None:
    """NotFound for the first row the new run refers to that no longer exists (deleted by a
    transaction that committed meanwhile), or None when they all do."""
    references: tuple[tuple[str, Any, uuid.UUID | None], ...] = (
        ("session", SessionRow, row.session_id),
        ("agent", AgentRow, row.agent_id),
        ("batch", BatchRow, row.batch_id),
        ("run", RunRow, row.previous_run_id),
    )
    for kind, model, ident in references:
        # A query, not session.get: the identity map would answer from rows loaded earlier.
        if ident is not None and session.scalar(select(model.id).where(model.id == ident)) is None:
            return NotFound(kind, str(ident))
    return None


def create_run(
    session: Session,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    content: str,
    *,
    queue: bool = False,
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    batch_id: uuid.UUID | None = None,
    previous_run_id: uuid.UUID | None = None,
    webhook_url: str | None = None,
) -> NewRun:
    """Write the user message and a queued run in the caller's transaction (`batch_id`: the
    run is an attempt of that batch's item; `previous_run_id`: the run it continues, whose
    lineage it joins).

    The agent is held (FOR KEY SHARE: a concurrent delete of it waits, then sees this run and
    refuses) before the session row is locked, the order a delete takes them in, so the two
    never deadlock; a gone agent or session is NotFound. The session lock serialises
    concurrent messages to one session: the second sees the first's run and gets SessionBusy
    (409) unless `queue` is set. `created_at` is the clock when the row is written, after the
    lock, not the transaction's start: runs of a session sort in the order they got it.

    IdempotencyKeyReused (409) only ever means that: a key sent before with another request.
    A row that vanished meanwhile (a batch, the previous run) is NotFound (404)."""
    _hold_agent(session, tenant_id, session_id)
    chat = agent_store.lock_session(session, tenant_id, session_id)
    fingerprint = request_hash(session_id, content, queue, metadata or {}, webhook_url)
    if idempotency_key is not None:
        earlier = _by_key(session, tenant_id, idempotency_key)
        if earlier is not None:
            if earlier.request_hash != fingerprint:
                raise IdempotencyKeyReused
            return NewRun(run_record(earlier), created=False, start_now=False)
    active = _active_run(session, session_id)
    if active is not None and not queue:
        raise SessionBusy(str(session_id), str(active.id))
    lineage_id = None
    if previous_run_id is not None:
        previous = session.get_one(RunRow, previous_run_id)
        lineage_id = previous.lineage_id or previous.id
    row = RunRow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        session_id=session_id,
        agent_id=chat.agent_id,
        status="queued",
        input=content,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        batch_id=batch_id,
        previous_run_id=previous_run_id,
        lineage_id=lineage_id,
        metadata_=dict(metadata or {}),
        webhook_url=webhook_url,
        # now() is the transaction's start: a transaction that began first but got the
        # session's lock second would sort its run before the one it waited for.
        created_at=func.clock_timestamp(),
        enqueued_at=func.clock_timestamp(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if idempotency_key is not None and _is_key_clash(exc):
            # The same key, sent concurrently to another session.
            earlier = _by_key(session, tenant_id, idempotency_key)
            if earlier is None or earlier.request_hash != fingerprint:
                raise IdempotencyKeyReused from None
            return NewRun(run_record(earlier), created=False, start_now=False)
        gone = _vanished(session, row)
        if gone is None:
            raise  # a constraint nothing here explains: a bug, not the caller's doing
        raise gone from None
    session.add(
        MessageRow(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            session_id=session_id,
            run_id=row.id,
            role="user",
            content=content,
        )
    )
    after = str(previous_run_id) if previous_run_id is not None else None
    append_event(session, tenant_id, row.id, RunQueued(str(session_id), after))
    session.flush()
    session.refresh(row)
    return NewRun(run_record(row), created=True, start_now=active is None)


def get_run(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    """One run, or NotFound."""
    row = session.scalar(select(RunRow).where(RunRow.id == run_id, RunRow.tenant_id == tenant_id))
    if row is None:
        raise NotFound("run", str(run_id))
    return _with_action(session, row)


def _with_action(session: Session, row: RunRow) -> Run:
    """The run, with what it waits for when it waits for a human."""
    run = run_record(row)
    if row.status != "requires_action":
        return run
    return replace(run, required_action=approvals.required_action(session, row))


def load_run(session: Session, run_id: uuid.UUID) -> Run | None:
    """A run by id alone: for workers, which get ids from the queue, never from a caller."""
    row = session.get(RunRow, run_id)
    return run_record(row) if row is not None else None


def list_runs(
    session: Session,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    limit: int = 50,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Run]:
    """A session's runs newest first, `limit` of them after the (created_at, id) cursor of
    the previous page."""
    agent_store.get_session(session, tenant_id, session_id)
    query = select(RunRow).where(RunRow.session_id == session_id, RunRow.tenant_id == tenant_id)
    if before is not None:
        query = query.where(tuple_(RunRow.created_at, RunRow.id) < tuple_(*before))
    order = (RunRow.created_at.desc(), RunRow.id.desc())
    rows = session.scalars(query.order_by(*order).limit(limit)).all()
    return [_with_action(session, row) for row in rows]


def list_tenant_runs(
    session: Session,
    tenant_id: uuid.UUID,
    where: RunFilter,
    *,
    limit: int = 50,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Run]:
    """The tenant's runs matching `where`, newest first, `limit` of them after the
    (created_at, id) cursor of the previous page."""
    query = select(RunRow).where(RunRow.tenant_id == tenant_id)
    if where.status is not None:
        query = query.where(RunRow.status == where.status)
    if where.agent_id is not None:
        query = query.where(RunRow.agent_id == where.agent_id)
    if where.session_id is not None:
        query = query.where(RunRow.session_id == where.session_id)
    if where.batch_id is not None:
        query = query.where(RunRow.batch_id == where.batch_id)
    if where.user_id is not None:
        of_user = select(SessionRow.id).where(
            SessionRow.tenant_id == tenant_id, SessionRow.user_id == where.user_id
        )
        query = query.where(RunRow.session_id.in_(of_user))
    if before is not None:
        query = query.where(tuple_(RunRow.created_at, RunRow.id) < tuple_(*before))
    order = (RunRow.created_at.desc(), RunRow.id.desc())
    rows = session.scalars(query.order_by(*order).limit(limit)).all()
    return [_with_action(session, row) for row in rows]


def claim(session: Session, run_id: uuid.UUID, owner: str, lease_s: float) -> Run | None:
    """Take the run for this worker: a queued run, or a running one whose lease lapsed, that no
    earlier run of its session is ahead of. None when there is nothing to do here."""
    earlier = aliased(RunRow)
    blocked = exists().where(
        earlier.session_id == RunRow.session_id,
        earlier.created_at < RunRow.created_at,
        earlier.status.in_(ACTIVE_STATUSES),
    )
    row = session.scalar(
        update(RunRow)
        .where(
            RunRow.id == run_id,
            (RunRow.status == "queued")
            | and_(RunRow.status == "running", RunRow.lease_expires_at < func.now()),
            ~blocked,
        )
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=func.now() + text(f"interval '{float(lease_s)} seconds'"),
            attempts=RunRow.attempts + 1,
            started_at=func.coalesce(RunRow.started_at, func.now()),
        )
        .returning(RunRow)
    )
    return run_record(row) if row is not None else None


def heartbeat(session: Session, run_id: uuid.UUID, owner: str, lease_s: float) -> bool:
    """Extend the lease; returns whether a cancel was requested. LeaseLost if not ours."""
    cancel = session.scalar(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.lease_owner == owner, RunRow.status == "running")
        .values(lease_expires_at=func.now() + text(f"interval '{float(lease_s)} seconds'"))
        .returning(RunRow.cancel_requested)
    )
    if cancel is None:
        raise LeaseLost(str(run_id))
    return bool(cancel)


def owned(session: Session, run_id: uuid.UUID, owner: str) -> RunRow:
    """The run's row, locked, if this worker still holds it; else LeaseLost."""
    row = session.scalar(select(RunRow).where(RunRow.id == run_id).with_for_update())
    if row is None or row.status != "running" or row.lease_owner != owner:
        raise LeaseLost(str(run_id))
    return row


def _step(row: StepRow, calls: Sequence[ToolCallRow]) -> Step:
    return Step(
        step=row.step,
        context=list(row.context),
        output=StepOutput.from_json(dict(row.output)),
        decision=cast(StepDecision, row.decision),
        invalid_attempts=row.invalid_attempts,
        usage=Usage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=row.cost_usd,
        ),
        model_ms=row.model_ms,
        tool_calls=tuple(
            ToolCallRecord(
                c.step,
                c.call_id,
                c.position,
                c.name,
                c.arguments,
                c.result,
                c.is_error,
                c.started_at,
                c.starts,
                _approval_state(c.approval),
                c.approval_message,
            )
            for c in sorted(calls, key=lambda c: c.position)
        ),
        created_at=row.created_at,
    )


def _approval_state(value: str | None) -> ApprovalState | None:
    if value in ("pending", "approved", "denied"):
        return cast(ApprovalState, value)
    return None


def load_steps(session: Session, run_id: uuid.UUID) -> list[Step]:
    """A run's persisted steps in order, each with its tool calls."""
    steps = session.scalars(
        select(StepRow).where(StepRow.run_id == run_id).order_by(StepRow.step)
    ).all()
    calls = session.scalars(select(ToolCallRow).where(ToolCallRow.run_id == run_id)).all()
    return [_step(s, [c for c in calls if c.step == s.step]) for s in steps]


def list_steps(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> list[Step]:
    """The steps of a run of this tenant."""
    get_run(session, tenant_id, run_id)
    return load_steps(session, run_id)


@dataclass(frozen=True)
class StepWrite:
    """A model output to persist, with what was decided about it."""

    step: int
    context: list[dict[str, Any]]
    output: StepOutput
    decision: StepDecision
    invalid_attempts: int
    usage: Usage
    model_ms: float
    results: Mapping[str, str] | None = None
    """Error results known at decision time (invalid calls), by call id."""

    @property
    def calls(self) -> tuple[CalledTool, ...]:
        """The calls stored as tool calls, to run or answer: those of a `tools` or
        `tool_error` step (other steps keep what the model wrote in their output only)."""
        return self.output.tool_calls if self.decision in ("tools", "tool_error") else ()


def written_step(write: StepWrite, at: datetime) -> Step:
    """The Step that `record_step(write)` stores, without reading it back."""
    results = write.results or {}
    return Step(
        step=write.step,
        context=write.context,
        output=write.output,
        decision=write.decision,
        invalid_attempts=write.invalid_attempts,
        usage=write.usage,
        model_ms=write.model_ms,
        tool_calls=tuple(
            ToolCallRecord(
                write.step,
                call.id,
                position,
                call.name,
                call.arguments,
                results.get(call.id),
                call.id in results,
            )
            for position, call in enumerate(write.calls)
        ),
        created_at=at,
    )


def record_step(session: Session, run: RunRow, write: StepWrite) -> None:
    """Persist a step's output and its calls (before any runs), with their events; a no-op
    when the step is already stored (a retried write whose first commit went through)."""
    if session.get(StepRow, (run.id, write.step)) is not None:
        return
    session.add(
        StepRow(
            run_id=run.id,
            step=write.step,
            tenant_id=run.tenant_id,
            context=write.context,
            output=write.output.to_json(),
            decision=write.decision,
            invalid_attempts=write.invalid_attempts,
            prompt_tokens=write.usage.prompt_tokens,
            completion_tokens=write.usage.completion_tokens,
            cost_usd=write.usage.cost_usd,
            model_ms=write.model_ms,
        )
    )
    run.steps = write.step
    run.prompt_tokens += write.usage.prompt_tokens
    run.completion_tokens += write.usage.completion_tokens
    run.cost_usd += write.usage.cost_usd
    results = write.results or {}
    for position, call in enumerate(write.calls):
        call_id, name, arguments = call.id, call.name, call.arguments
        result = results.get(call_id)
        session.add(
            ToolCallRow(
                run_id=run.id,
                step=write.step,
                call_id=call_id,
                tenant_id=run.tenant_id,
                position=position,
                name=name,
                arguments=arguments,
                result=result,
                is_error=result is not None,
                finished_at=func.now() if result is not None else None,
            )
        )
        called = ToolCalled(write.step, call_id, name, arguments)
        append_event(session, run.tenant_id, run.id, called)
        if result is not None:
            finished = ToolFinished(write.step, call_id, result, is_error=True)
            append_event(session, run.tenant_id, run.id, finished)
    session.flush()


def mark_started(session: Session, run_id: uuid.UUID, step: int, call_id: str) -> None:
    """Record that a call's tool is about to run (commit before running it): from then on a
    resumed run knows the call may have taken effect. Keeps the first start time."""
    session.execute(
        update(ToolCallRow)
        .where(ToolCallRow.run_id == run_id, ToolCallRow.step == step)
        .where(ToolCallRow.call_id == call_id, ToolCallRow.result.is_(None))
        .values(
            started_at=func.coalesce(ToolCallRow.started_at, func.now()),
            starts=ToolCallRow.starts + 1,
        )
    )


def record_tool_result(
    session: Session, run: RunRow, step: int, call_id: str, result: str, is_error: bool
) -> bool:
    """Persist one finished tool call and its event; False (and no event) when it already
    had a result."""
    stored = session.scalar(
        update(ToolCallRow)
        .where(ToolCallRow.run_id == run.id, ToolCallRow.step == step)
        .where(ToolCallRow.call_id == call_id, ToolCallRow.result.is_(None))
        .values(result=result, is_error=is_error, finished_at=func.now())
        .returning(ToolCallRow.call_id)
    )
    if stored is None:
        return False
    append_event(session, run.tenant_id, run.id, ToolFinished(step, call_id, result, is_error))
    return True


def hand_back(session: Session, run: RunRow, reason: str, message: str) -> None:
    """The attempt stops on purpose after an outage outlasted its retries: the run stays
    `running` under a lease that lapses by itself, the sweeper sends it again, and this attempt
    is not counted toward the poison limit."""
    run.outage_yields += 1
    append_event(session, run.tenant_id, run.id, RunReleased(reason, message, run.attempts))


def finish(
    session: Session,
    run: RunRow,
    status: RunStatus,
    *,
    stop_reason: str,
    output: str | None = None,
    error: dict[str, Any] | None = None,
) -> Message | None:
    """End the run in the caller's transaction: the answer as a session message, the final
    events, and for a batch run its item's outcome. Returns the answer message, if any."""
    run.status = status
    run.stop_reason = stop_reason
    run.output = output
    run.error = error
    run.finished_at = func.now()
    run.lease_owner = None
    run.lease_expires_at = None
    message = None
    if output is not None:
        row = MessageRow(
            id=uuid.uuid4(),
            tenant_id=run.tenant_id,
            session_id=run.session_id,
            run_id=run.id,
            role="assistant",
            content=output,
        )
        session.add(row)
        session.flush()
        message = agent_store.message_record(row)
        append_event(session, run.tenant_id, run.id, Answer(str(row.id), output))
    usage = Usage(
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        cost_usd=run.cost_usd,
    )
    final = RunFinished(status, stop_reason, run.steps, usage, error)
    append_event(session, run.tenant_id, run.id, final)
    session.flush()
    if run.batch_id is not None:
        batch_store.record_outcome(session, run)
    return message


def request_cancel(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
    """Ask a run to stop. A queued run, or one waiting for approval, ends at once; a running
    one at its worker's next check; a finished one is left as it is (cancel is idempotent)."""
    row = session.scalar(
        select(RunRow).where(RunRow.id == run_id, RunRow.tenant_id == tenant_id).with_for_update()
    )
    if row is None:
        raise NotFound("run", str(run_id))
    if row.status in ("queued", "requires_action"):  # no worker holds it: it ends here
        row.cancel_requested = True
        row.action_expires_at = None
        finish(session, row, "cancelled", stop_reason="cancelled")
    elif row.status == "running":
        row.cancel_requested = True
    session.flush()
    session.refresh(row)
    return run_record(row)


def next_queued(session: Session, session_id: uuid.UUID) -> uuid.UUID | None:
    """The oldest queued run of a session (to enqueue when the one before it ends)."""
    return session.scalar(
        select(RunRow.id)
        .where(RunRow.session_id == session_id, RunRow.status == "queued")
        .order_by(RunRow.created_at)
        .limit(1)
    )


def due_for_requeue(
    session: Session, *, resend_after_s: float, queued_after_s: float, limit: int = 100
) -> list[uuid.UUID]:
    """Runs a worker should pick up but apparently will not: running with a lapsed lease (the
    worker died), or queued for `queued_after_s` with nothing ahead of them (a lost message).
    Each is stamped enqueued now, so it is sent at most once per `resend_after_s`."""
    earlier = aliased(RunRow)
    blocked = exists().where(
        earlier.session_id == RunRow.session_id,
        earlier.created_at < RunRow.created_at,
        earlier.status.in_(ACTIVE_STATUSES),
    )

    def ago(seconds: float) -> Any:
        return func.now() - text(f"interval '{float(seconds)} seconds'")

    due = (
        select(RunRow.id)
        .where(
            and_(
                RunRow.status == "running",
                RunRow.lease_expires_at < func.now(),
                RunRow.enqueued_at < ago(resend_after_s),
            )
            | and_(RunRow.status == "queued", RunRow.enqueued_at < ago(queued_after_s), ~blocked)
        )
        .order_by(RunRow.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = session.scalars(
        update(RunRow)
        .where(RunRow.id.in_(due.scalar_subquery()))
        .values(enqueued_at=func.now())
        .returning(RunRow.id)
    ).all()
    return list(ids)
