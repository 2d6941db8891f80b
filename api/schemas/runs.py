"""Run bodies: RunPublic (with the action a waiting run needs), StepPublic (with its tool
calls and recorded context), ApprovalsCreate (decisions on pending tool calls)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, Field, field_validator

from agents.records import (
    ApprovalDecision,
    ApprovalState,
    CallDecision,
    PendingCall,
    PendingKind,
    RequiredAction,
    Run,
    RunStatus,
    Step,
    ToolCallRecord,
    Usage,
)
from api.schemas.common import Inbound, Metadata, invalid

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


class PendingCallPublic(BaseModel):
    """A tool call that waits for a human's decision."""

    call_id: str
    name: str
    arguments: str = Field(description="JSON text, as the model wrote it.")
    parameters: dict[str, Any] = Field(description="The tool's JSON schema (edits must fit).")
    kind: PendingKind = Field(
        description="approval: approve, deny or edit; question (ask_user): answer or deny."
    )

    @classmethod
    def of(cls, call: PendingCall) -> PendingCallPublic:
        """From the agents layer's record."""
        return cls(
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
            parameters=call.parameters,
            kind=call.kind,
        )


class RequiredActionPublic(BaseModel):
    """What a run in `requires_action` waits for: POST /v1/runs/{id}/approvals."""

    type: Literal["approve_tool_calls"] = "approve_tool_calls"
    step: int
    calls: list[PendingCallPublic]
    expires_at: datetime = Field(description="Then the pending calls are denied.")

    @classmethod
    def of(cls, action: RequiredAction) -> RequiredActionPublic:
        """From the agents layer's record."""
        calls = [PendingCallPublic.of(c) for c in action.calls]
        return cls(step=action.step, calls=calls, expires_at=action.expires_at)


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
    required_action: RequiredActionPublic | None = None
    webhook_url: str | None = None

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
            webhook_url=run.webhook_url,
            required_action=(
                RequiredActionPublic.of(run.required_action) if run.required_action else None
            ),
        )


class ToolCallPublic(BaseModel):
    """A tool call of a step; `result` is null while it has not finished."""

    call_id: str
    position: int
    name: str
    arguments: str
    result: str | None
    is_error: bool
    approval: ApprovalState | None = Field(
        default=None, description="null: no approval needed; else pending, approved or denied."
    )

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
            approval=call.approval,
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


MAX_EDIT_CHARS = 100_000
"""Longest replacement arguments (as JSON text), the limit on what a model may write."""


class ApprovalIn(Inbound):
    """A decision on one pending tool call."""

    call_id: str = Field(min_length=1, max_length=128)
    decision: ApprovalDecision = Field(
        description="approve, deny, or edit (run it with `arguments` instead); a question "
        "(an ask_user call) takes answer (with the answer as `message`) or deny."
    )
    arguments: dict[str, Any] | None = Field(
        default=None, description="For edit: the replacement arguments object."
    )
    message: str | None = Field(
        default=None,
        max_length=2000,
        description="For the model: why the call was denied, a note with the approval, or the "
        "answer to a question.",
    )


class ApprovalsCreate(Inbound):
    """Body of POST /v1/runs/{id}/approvals: decisions on some or all of the pending calls
    (the run goes on once none is pending)."""

    decisions: list[ApprovalIn] = Field(min_length=1, max_length=64)

    @field_validator("decisions")
    @classmethod
    def one_each(cls, value: list[ApprovalIn]) -> list[ApprovalIn]:
        """Refuse two decisions on one call, and edit without arguments (or arguments with
        anything else)."""
        ids = [d.call_id for d in value]
        if len(set(ids)) != len(ids):
            raise ValueError("must not decide one call twice")
        for d in value:
            if (d.decision == "edit") != (d.arguments is not None):
                raise ValueError("`arguments` goes with decision `edit`, and only with it")
            if d.decision == "answer" and not (d.message or "").strip():
                raise ValueError("decision `answer` needs the answer as `message`")
        return value

    def checked(self, action: RequiredAction | None) -> list[CallDecision]:
        """The agents layer's form, each edit checked against its tool's schema (422 naming
        the decision when it does not fit)."""
        schemas = {c.call_id: c.parameters for c in action.calls} if action else {}
        kinds = {c.call_id: c.kind for c in action.calls} if action else {}
        decisions = []
        for index, d in enumerate(self.decisions):
            kind = kinds.get(d.call_id)
            if (
                kind is not None
                and d.decision != "deny"
                and (kind == "question") != (d.decision == "answer")
            ):
                takes = "answer or deny" if kind == "question" else "approve, deny or edit"
                raise invalid(f"decisions[{index}].decision", f"this call takes {takes}")
            arguments = None
            if d.arguments is not None:
                arguments = json.dumps(d.arguments, ensure_ascii=False)
                param = f"decisions[{index}].arguments"
                if len(arguments) > MAX_EDIT_CHARS:
                    raise invalid(param, f"at most {MAX_EDIT_CHARS} characters as JSON")
                schema = schemas.get(d.call_id)
                if schema is not None:
                    _check(param, d.arguments, schema)
            decisions.append(CallDecision(d.call_id, d.decision, arguments, d.message))
        return decisions


def _check(param: str, arguments: dict[str, Any], schema: dict[str, Any]) -> None:
    try:
        jsonschema.validate(arguments, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise invalid(
            param, f"does not fit the tool's schema{' at ' + where if where else ''}: {exc.message}"
        ) from None
    except jsonschema.SchemaError:
        return  # a schema jsonschema cannot read: the worker's own validation still applies
