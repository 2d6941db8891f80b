"""Human approval of tool calls: a run waits in `requires_action` until each call its agent's
policy names has been approved, edited or denied, or until its wait expires.

The worker, about to run a step's calls, asks `undecided` (pure) which still wait; if any do,
`pause` marks them `pending` with their tool's argument schema, ends the attempt's lease and
appends `run.requires_action`; no worker slot is held while a human thinks. `decide` records a
caller's decisions in one transaction (each a `tool.approval` event) and, once none is pending,
queues the run again; the caller sends it after the commit. `expire_due` (the sweeper) denies
the calls of runs that waited past `action_expires_at` and queues those runs the same way. The
resumed attempt runs approved calls (with edited arguments, if any) and answers denied ones
with their `approval_message`; the usual exactly-once rules of agents/tools/runner.py apply.
An `ask_user` call (agents/tools/ask_user.py) always waits, as a `question`: the decision
`answer` gives its result, and `deny` or the expiry tells the model no answer came.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from agents.records import (
    ApprovalPolicy,
    CallDecision,
    PendingCall,
    PendingKind,
    RequiredAction,
    Step,
    ToolCallRecord,
)
from agents.runs.events import RunRequiresAction, ToolApproval, append_event
from agents.tables import RunRow, ToolCallRow
from agents.tools.ask_user import ASK_USER
from core.errors import Conflict, NotFound

DENIED = "not run: a human reviewer denied this call"
UNANSWERED = "the user did not answer"
EXPIRED = "not run: the wait for a human decision on this call expired"
MAX_MESSAGE_CHARS = 2000
"""Longest reviewer message kept (the model reads it)."""


def undecided(step: Step, policy: ApprovalPolicy) -> list[ToolCallRecord]:
    """The step's calls that wait for a human before the step's calls may run: without a
    result, needing approval under `policy` (or already pending), and not yet decided."""
    return [
        call
        for call in step.tool_calls
        if call.result is None
        and (call.approval == "pending" or (call.approval is None and _asks(policy, call.name)))
    ]


def _asks(policy: ApprovalPolicy, tool: str) -> bool:
    return tool == ASK_USER or policy.needs_approval(tool)


def denial(call: ToolCallRecord) -> str:
    """What the model reads for a denied call."""
    return call.approval_message or (UNANSWERED if call.name == ASK_USER else DENIED)


def answer(call: ToolCallRecord) -> str | None:
    """The person's answer to an ask_user call, once given."""
    if call.name == ASK_USER and call.approval == "approved":
        return call.approval_message or ""
    return None


def pause(
    session: Session,
    run: RunRow,
    step: int,
    calls: Sequence[PendingCall],
    timeout_s: int,
) -> datetime:
    """Mark the calls pending and the run `requires_action` (its lease given up), with the
    event; returns when the wait expires."""
    for call in calls:
        session.execute(
            update(ToolCallRow)
            .where(ToolCallRow.run_id == run.id, ToolCallRow.step == step)
            .where(ToolCallRow.call_id == call.call_id, ToolCallRow.result.is_(None))
            .values(approval="pending", parameters=call.parameters)
        )
    later = func.now() + text(f"interval '{int(timeout_s)} seconds'")
    expires_at: datetime = session.execute(select(later)).scalar_one()
    run.status = "requires_action"
    run.lease_owner = None
    run.lease_expires_at = None
    run.action_expires_at = expires_at
    data = RunRequiresAction(step, list(calls), expires_at.isoformat())
    append_event(session, run.tenant_id, run.id, data)
    session.flush()
    return expires_at


def required_action(session: Session, run: RunRow) -> RequiredAction | None:
    """What the run waits for, when it is in `requires_action`."""
    if run.status != "requires_action" or run.action_expires_at is None:
        return None
    rows = session.scalars(
        select(ToolCallRow)
        .where(ToolCallRow.run_id == run.id, ToolCallRow.approval == "pending")
        .order_by(ToolCallRow.step, ToolCallRow.position)
    ).all()
    if not rows:
        return None
    calls = tuple(
        PendingCall(r.call_id, r.name, r.arguments, dict(r.parameters or {}), _kind(r.name))
        for r in rows
    )
    return RequiredAction(rows[0].step, calls, run.action_expires_at)


def decide(
    session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, decisions: Sequence[CallDecision]
) -> bool:
    """Record decisions on a waiting run's pending calls; returns whether the run was queued
    again (none is pending any more). NotFound for another tenant's run or a call the run
    never made; Conflict when the run is not waiting or a call was decided already."""
    run = session.scalar(
        select(RunRow).where(RunRow.id == run_id, RunRow.tenant_id == tenant_id).with_for_update()
    )
    if run is None:
        raise NotFound("run", str(run_id))
    if run.status != "requires_action":
        raise Conflict(f"run {run_id} is {run.status}, not waiting for approval")
    calls = {
        row.call_id: row
        for row in session.scalars(
            # The waiting step is the run's last (call ids repeat across steps).
            select(ToolCallRow).where(
                ToolCallRow.run_id == run.id,
                ToolCallRow.step == run.steps,
                ToolCallRow.approval.is_not(None),
            )
        )
    }
    for index, decision in enumerate(decisions):
        row = calls.get(decision.call_id)
        param = f"decisions[{index}].call_id"
        if row is None:
            raise _unknown_call(session, run, decision.call_id)
        if row.approval != "pending":
            raise Conflict(
                f"tool call {decision.call_id!r} was {row.approval} already", param=param
            )
        _apply(row, decision)
        append_event(
            session,
            run.tenant_id,
            run.id,
            ToolApproval(
                row.step, row.call_id, decision.decision, decision.arguments, decision.message
            ),
        )
    session.flush()
    if any(row.approval == "pending" for row in calls.values()):
        return False
    _resume(run)
    return True


def expire_due(session: Session, limit: int = 100) -> list[uuid.UUID]:
    """Deny the pending calls of runs whose wait expired and queue those runs again; returns
    their ids, to send. Several sweepers skip each other's rows."""
    runs = session.scalars(
        select(RunRow)
        .where(RunRow.status == "requires_action", RunRow.action_expires_at < func.now())
        .order_by(RunRow.action_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for run in runs:
        pending = session.scalars(
            select(ToolCallRow)
            .where(ToolCallRow.run_id == run.id, ToolCallRow.approval == "pending")
            .order_by(ToolCallRow.step, ToolCallRow.position)
        ).all()
        for row in pending:
            row.approval = "denied"
            row.approval_message = EXPIRED
            data = ToolApproval(row.step, row.call_id, "deny", message=EXPIRED, expired=True)
            append_event(session, run.tenant_id, run.id, data)
        _resume(run)
    session.flush()
    return [run.id for run in runs]


def _kind(tool: str) -> PendingKind:
    return "question" if tool == ASK_USER else "approval"


def _apply(row: ToolCallRow, decision: CallDecision) -> None:
    note = (decision.message or "").strip()[:MAX_MESSAGE_CHARS] or None
    question = row.name == ASK_USER
    if decision.decision != "deny" and question != (decision.decision == "answer"):
        wanted = "answer or deny" if question else "approve, deny or edit"
        raise Conflict(f"tool call {row.call_id!r} takes {wanted}, not {decision.decision}")
    if decision.decision == "deny":
        refused = UNANSWERED if question else DENIED
        row.approval = "denied"
        row.approval_message = f"{refused}: {note}" if note else refused
        return
    row.approval = "approved"
    row.approval_message = note
    if decision.decision == "edit" and decision.arguments is not None:
        row.arguments = decision.arguments


def _resume(run: RunRow) -> None:
    run.status = "queued"
    run.action_expires_at = None
    run.enqueued_at = func.now()


def _unknown_call(session: Session, run: RunRow, call_id: str) -> Exception:
    exists = session.scalar(
        select(ToolCallRow.call_id).where(
            ToolCallRow.run_id == run.id,
            ToolCallRow.step == run.steps,
            ToolCallRow.call_id == call_id,
        )
    )
    if exists is not None:
        return Conflict(f"tool call {call_id!r} does not wait for approval")
    return NotFound("tool call", call_id)


def pending_calls(
    calls: Sequence[ToolCallRecord], schemas: Mapping[str, dict[str, object]]
) -> list[PendingCall]:
    """The calls as the human sees them, each with its tool's argument schema."""
    return [
        PendingCall(c.call_id, c.name, c.arguments, dict(schemas.get(c.name, {})), _kind(c.name))
        for c in calls
    ]
