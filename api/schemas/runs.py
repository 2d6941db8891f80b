"""Run bodies: RunPublic, StepPublic (with its tool calls and recorded context)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agents.records import Run, RunStatus, Step, ToolCallRecord, Usage
from api.schemas.common import Metadata

MAX_EVENT_SEQ = 2**31 - 1
"""The largest seq a run event can have (a 4-byte integer column): a larger `after` is 422."""


class UsagePublic(BaseModel):
    """Tokens and cost."""

    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @classmethod
    def of(cls, usage: Usage) -> UsagePublic:
        """From the agents layer's record."""
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
        )


class RunPublic(BaseModel):
    """A run: one execution of an agent on one user message."""

    id: uuid.UUID
    session_id: uuid.UUID
    agent_id: uuid.UUID
    status: RunStatus
    input: str
    output: str | None
    stop_reason: str | None
    error: dict[str, Any] | None
    steps: int
    usage: UsagePublic
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    batch_id: uuid.UUID | None = None
    metadata: Metadata

    @classmethod
    def of(cls, run: Run) -> RunPublic:
        """From the agents layer's record."""
        return cls(
            id=run.id,
            session_id=run.session_id,
            agent_id=run.agent_id,
            status=run.status,
            input=run.input,
            output=run.output,
            stop_reason=run.stop_reason,
            error=run.error,
            steps=run.steps,
            usage=UsagePublic.of(run.usage),
            attempts=run.attempts,
            cancel_requested=run.cancel_requested,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            batch_id=run.batch_id,
            metadata=run.metadata,
        )


class ToolCallPublic(BaseModel):
    """A tool call of a step; `result` is null while it has not finished."""

    call_id: str
    position: int
    name: str
    arguments: str
    result: str | None
    is_error: bool

    @classmethod
    def of(cls, call: ToolCallRecord) -> ToolCallPublic:
        """From the agents layer's record."""
        return cls(
            call_id=call.call_id,
            position=call.position,
            name=call.name,
            arguments=call.arguments,
            result=call.result,
            is_error=call.is_error,
        )


class StepPublic(BaseModel):
    """A model call of a run: the context sent, the output, what the loop decided."""

    step: int
    context: list[dict[str, Any]]
    output: dict[str, Any]
    decision: str
    invalid_attempts: int
    usage: UsagePublic
    model_ms: float
    tool_calls: list[ToolCallPublic]
    created_at: datetime

    @classmethod
    def of(cls, step: Step) -> StepPublic:
        """From the agents layer's record."""
        return cls(
            step=step.step,
            context=step.context,
            output=step.output.to_json(),
            decision=step.decision,
            invalid_attempts=step.invalid_attempts,
            usage=UsagePublic.of(step.usage),
            model_ms=step.model_ms,
            tool_calls=[ToolCallPublic.of(call) for call in step.tool_calls],
            created_at=step.created_at,
        )
