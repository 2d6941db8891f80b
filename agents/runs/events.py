"""The run event log: append in the caller's transaction, notify listeners on commit, read.

Each event is written in the same transaction as the state change it reports, so an event
exists exactly when its change does: a worker that dies mid-step leaves neither behind, and a
resumed run never writes one twice. `seq` comes from the run row's counter (a row lock), so a
run's events are gap-free and ordered. `pg_notify` is transactional: listeners hear of an event
only once it is committed, and then read it from the table.

Types, in the order a run produces them:
  run.queued, run.started, step.started, message.delta (coalesced tokens of a step, provisional:
  a step retried after a crash streams again), tool.call, tool.result, message (the answer),
  then exactly one of run.succeeded, run.failed, run.cancelled, run.incomplete. During an
  outage: run.waiting before each retry of the model, run.released when an attempt hands the
  run back. A call that needs a human: run.requires_action (the run waits, no worker holds
  it), then one tool.approval per decision, then run.started again.

The run's ending events and run.requires_action also become webhook deliveries, in the same
transaction (agents/webhooks/outbox.py).

Each type's data is a dataclass here (`append_event` takes nothing else, so mypy checks every
payload the server writes), and tests/sdk/test_event_parity.py keeps the SDK's typed events
field for field in step with them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from agents import telemetry
from agents.records import ApprovalDecision, Event, PendingCall, RunStatus, Usage
from agents.tables import EventRow
from agents.webhooks import outbox

NOTIFY_CHANNEL = "agentmill_run_events"


@dataclass(frozen=True)
class RunQueued:
    """The run was accepted and waits for a worker (`previous_run_id`: a batch item's retry)."""

    TYPE: ClassVar[str] = "run.queued"
    session_id: str
    previous_run_id: str | None = None


@dataclass(frozen=True)
class RunStarted:
    """A worker claimed the run (again after a crash: attempt 2, ...)."""

    TYPE: ClassVar[str] = "run.started"
    attempt: int


@dataclass(frozen=True)
class StepStarted:
    """A model call begins."""

    TYPE: ClassVar[str] = "step.started"
    step: int
    attempt: int


@dataclass(frozen=True)
class MessageDelta:
    """Text of the step's output as it is generated; provisional."""

    TYPE: ClassVar[str] = "message.delta"
    step: int
    attempt: int
    delta: str


@dataclass(frozen=True)
class ToolCalled:
    """The model called a tool; `arguments` is the JSON text it wrote."""

    TYPE: ClassVar[str] = "tool.call"
    step: int
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolFinished:
    """A tool call's result (or the error the model reads instead)."""

    TYPE: ClassVar[str] = "tool.result"
    step: int
    call_id: str
    result: str
    is_error: bool


@dataclass(frozen=True)
class Answer:
    """The final answer, stored as the session's assistant message."""

    TYPE: ClassVar[str] = "message"
    message_id: str
    content: str
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True)
class RunWaiting:
    """The model server is down or failing: the run waits `retry_in_s`, then tries again."""

    TYPE: ClassVar[str] = "run.waiting"
    reason: str
    message: str
    retry_in_s: float
    attempt: int


@dataclass(frozen=True)
class RunReleased:
    """An outage outlasted the attempt's retries: it handed the run back for a later one."""

    TYPE: ClassVar[str] = "run.released"
    reason: str
    message: str
    attempt: int


@dataclass(frozen=True)
class ToolSourceError:
    """The tools of an MCP server the agent uses could not be listed when this attempt of
    the run started; the model is offered the others (and the server's last listing, if this
    worker has one)."""

    TYPE: ClassVar[str] = "tool.source_error"
    server: str
    message: str


@dataclass(frozen=True)
class RunRequiresAction:
    """The run waits for a human's decision on these calls of the step (POST
    /v1/runs/{id}/approvals), until `expires_at` (ISO 8601); no worker holds it meanwhile."""

    TYPE: ClassVar[str] = "run.requires_action"
    step: int
    calls: list[PendingCall]
    expires_at: str


@dataclass(frozen=True)
class ToolApproval:
    """A decision on a pending call: approve, deny or edit (with the replacement arguments);
    `expired`: no human decided in time and the call was denied."""

    TYPE: ClassVar[str] = "tool.approval"
    step: int
    call_id: str
    decision: ApprovalDecision
    arguments: str | None = None
    message: str | None = None
    expired: bool = False


@dataclass(frozen=True)
class RunFinished:
    """The run's final event; its type is `run.<status>`."""

    status: RunStatus
    stop_reason: str
    steps: int
    usage: Usage
    """The run's totals (a run does not count cached prompt tokens: they are not sent)."""
    error: dict[str, Any] | None = None

    @property
    def TYPE(self) -> str:  # named as the other payloads' class constant
        return f"run.{self.status}"


EventData = (
    RunQueued
    | RunStarted
    | StepStarted
    | MessageDelta
    | ToolCalled
    | ToolFinished
    | Answer
    | RunWaiting
    | RunReleased
    | RunRequiresAction
    | ToolApproval
    | ToolSourceError
    | RunFinished
)
"""The data of a run event: one dataclass per type."""

TERMINAL_TYPES = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.incomplete"})
EVENT_DATA: dict[str, type[EventData]] = {
    **{kind.TYPE: kind for kind in (RunQueued, RunStarted, StepStarted, MessageDelta)},
    **{kind.TYPE: kind for kind in (ToolCalled, ToolFinished, Answer, RunWaiting, RunReleased)},
    **{kind.TYPE: kind for kind in (RunRequiresAction, ToolApproval, ToolSourceError)},
    **dict.fromkeys(TERMINAL_TYPES, RunFinished),
}
"""Each type a run event may have, with the class of its data."""
EVENT_TYPES = frozenset(EVENT_DATA)


# One round trip: bump the run's counter (locking its row), insert the event with that seq,
# notify. Table and column names are those of RunRow and EventRow.
_APPEND = text(
    """
    WITH counter AS (
        UPDATE runs SET event_seq = event_seq + 1
        WHERE id = :run_id AND tenant_id = :tenant_id
        RETURNING event_seq
    ), event AS (
        INSERT INTO run_events (run_id, seq, tenant_id, type, data)
        SELECT :run_id, event_seq, :tenant_id, :type, CAST(:data AS jsonb) FROM counter
        RETURNING seq
    )
    SELECT seq, pg_notify(:channel, CAST(:run_id AS text) || ':' || seq) FROM event
    """
)


def append_event(session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, data: EventData) -> int:
    """Append an event to the run's log (in the caller's transaction); returns its seq.

    One statement rather than an ORM update, insert and notify: events are a third of a run's
    statements, and this is its hottest write (see docs/benchmarks.md). Optional fields that
    are None are left out of the stored data."""
    seq = session.execute(
        _APPEND,
        {
            "run_id": run_id,
            "tenant_id": tenant_id,
            "type": data.TYPE,
            "data": event_json(run_id, data),
            "channel": NOTIFY_CHANNEL,
        },
    ).scalar_one()
    telemetry.event(data.TYPE)
    if data.TYPE in outbox.SUBSCRIBABLE:  # the webhooks that want it, in this transaction
        outbox.enqueue(session, tenant_id, run_id, int(seq), data.TYPE, event_fields(data))
    return int(seq)


def event_fields(data: EventData) -> dict[str, Any]:
    """An event's data as stored and sent: its fields, those that are None left out."""
    fields = {k: v for k, v in asdict(data).items() if v is not None}
    if isinstance(data, RunFinished):
        del fields["usage"]["cached_prompt_tokens"]
    return fields


def event_json(run_id: uuid.UUID, data: EventData) -> str:
    """An event's stored data: its fields and the run's id."""
    return json.dumps({"run_id": str(run_id), **event_fields(data)})


def read_events(
    session: Session, tenant_id: uuid.UUID, run_id: uuid.UUID, *, after: int = 0, limit: int = 500
) -> list[Event]:
    """Events with seq > `after`, in order."""
    rows = session.scalars(
        select(EventRow)
        .where(EventRow.run_id == run_id, EventRow.tenant_id == tenant_id, EventRow.seq > after)
        .order_by(EventRow.seq)
        .limit(limit)
    ).all()
    return [Event(r.run_id, r.seq, r.type, dict(r.data), r.created_at) for r in rows]
