"""Typed run events, as `GET /v1/runs/{id}/events` and a streamed message send them.

Each SSE message becomes one model: its `id` (the event's sequence number in the run), its
`type`, and its data's fields. A type this SDK does not know becomes an `UnknownEvent` with the
raw data, so a newer server never breaks an older client.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel

from agentmill.models import PendingCall, Usage

TERMINAL_TYPES = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.incomplete"})
"""A run's final event is one of these; nothing follows it."""


class RunEvent(BaseModel):
    """Base of every run event."""

    id: int
    """Sequence number in the run: 1, 2, 3, ... without gaps (the SSE id)."""
    type: str
    run_id: uuid.UUID

    @property
    def terminal(self) -> bool:
        """Whether this is the run's final event."""
        return self.type in TERMINAL_TYPES


class RunQueuedEvent(RunEvent):
    """The run was accepted and waits for a worker; a batch item's retry names the run it
    follows (`previous_run_id`)."""

    type: Literal["run.queued"]
    session_id: uuid.UUID
    previous_run_id: uuid.UUID | None = None


class RunStartedEvent(RunEvent):
    """A worker claimed the run (again after a crash: attempt 2, ...)."""

    type: Literal["run.started"]
    attempt: int


class StepStartedEvent(RunEvent):
    """A model call begins."""

    type: Literal["step.started"]
    step: int
    attempt: int


class MessageDeltaEvent(RunEvent):
    """Streamed text of the model's output; provisional (a retried step streams again)."""

    type: Literal["message.delta"]
    step: int
    attempt: int
    delta: str


class ToolCallEvent(RunEvent):
    """The model called a tool; `arguments` is the raw JSON it wrote."""

    type: Literal["tool.call"]
    step: int
    call_id: str
    name: str
    arguments: str


class ToolResultEvent(RunEvent):
    """A tool call finished."""

    type: Literal["tool.result"]
    step: int
    call_id: str
    result: str
    is_error: bool


class MessageEvent(RunEvent):
    """The final answer, stored as the session's assistant message."""

    type: Literal["message"]
    message_id: uuid.UUID
    role: Literal["assistant"] = "assistant"
    content: str


class RunWaitingEvent(RunEvent):
    """The model server is unreachable or failing: the run waits `retry_in_s` and tries again
    (it is not failed)."""

    type: Literal["run.waiting"]
    reason: str
    message: str
    retry_in_s: float
    attempt: int


class RunReleasedEvent(RunEvent):
    """An outage outlasted this attempt's retries: the attempt handed the run back, and a worker
    takes it up again later (the run is not failed)."""

    type: Literal["run.released"]
    reason: str
    message: str
    attempt: int


class RunRequiresActionEvent(RunEvent):
    """The run waits for a human's decision on these calls (`client.runs.approve`) until
    `expires_at`; the stream goes on once it resumes."""

    type: Literal["run.requires_action"]
    step: int
    calls: list[PendingCall]
    expires_at: str
    """ISO 8601."""


class ToolApprovalEvent(RunEvent):
    """A decision on a pending call (`expired`: nobody decided in time, so it was denied)."""

    type: Literal["tool.approval"]
    step: int
    call_id: str
    decision: Literal["approve", "deny", "edit", "answer"]
    arguments: str | None = None
    message: str | None = None
    expired: bool = False


class ToolSourceErrorEvent(RunEvent):
    """The tools of an MCP server the agent uses could not be listed when an attempt of the
    run started; the model was offered the others."""

    type: Literal["tool.source_error"]
    server: str
    message: str


class RunFinishedEvent(RunEvent):
    """The run's final event: run.succeeded, run.failed, run.cancelled or run.incomplete."""

    type: Literal["run.succeeded", "run.failed", "run.cancelled", "run.incomplete"]
    status: str
    stop_reason: str | None
    steps: int
    usage: Usage
    error: dict[str, Any] | None = None


class UnknownEvent(RunEvent):
    """An event of a type this SDK does not know; `data` holds all it carried."""

    data: dict[str, Any]


EVENT_MODELS: dict[str, type[RunEvent]] = {  # the model of each type
    "run.queued": RunQueuedEvent,
    "run.started": RunStartedEvent,
    "step.started": StepStartedEvent,
    "message.delta": MessageDeltaEvent,
    "tool.call": ToolCallEvent,
    "tool.result": ToolResultEvent,
    "message": MessageEvent,
    "run.waiting": RunWaitingEvent,
    "run.released": RunReleasedEvent,
    "run.requires_action": RunRequiresActionEvent,
    "tool.approval": ToolApprovalEvent,
    "tool.source_error": ToolSourceErrorEvent,
    **dict.fromkeys(TERMINAL_TYPES, RunFinishedEvent),
}

EVENT_TYPES = frozenset(EVENT_MODELS)
"""Every event type this SDK parses into its own model."""


def parse_event(id_: int, type_: str, data: str) -> RunEvent:
    """The typed event of one SSE message (its id, event name and JSON data)."""
    fields: dict[str, Any] = json.loads(data)
    cls = EVENT_MODELS.get(type_)
    if cls is None:
        return UnknownEvent(id=id_, type=type_, run_id=fields["run_id"], data=fields)
    return cls.model_validate({**fields, "id": id_, "type": type_})
