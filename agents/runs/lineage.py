"""A run that continues a failed one: a batch item's retry.

The retry is a new run (in a fresh session, as before), but it starts where its predecessor
stopped: the predecessor's steps and tool calls are copied into it, results and `started_at`
marks included, so the executor resumes it like a run of its own whose worker died. A tool
call that finished is never run again; one that was started and not finished is treated by
its tool's declared policy under the same idempotency key, because the copy keeps the step
numbers and call ids and the runs share a lineage (`runs.lineage_id`, the first run's id).

The copied steps' usage stays with the predecessor (a batch item sums the usage of all its
runs); the new run's totals count only what it does itself. Its event log starts fresh
(`run.queued` names the predecessor); `GET /v1/runs/{id}/steps` shows the continued steps.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from agents.tables import RunRow, StepRow, ToolCallRow

_STEP_COLUMNS = (
    "step",
    "tenant_id",
    "context",
    "output",
    "decision",
    "invalid_attempts",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "model_ms",
    "created_at",
)
_CALL_COLUMNS = (
    "step",
    "call_id",
    "tenant_id",
    "position",
    "name",
    "arguments",
    "result",
    "is_error",
    "started_at",
    "starts",
    "created_at",
    "finished_at",
)


def continue_from(session: Session, run_id: uuid.UUID, previous_id: uuid.UUID) -> int:
    """Copy the predecessor's steps and tool calls into the new run `run_id` (in the caller's
    transaction, before the run is sent); returns how many steps were copied."""
    for model, columns in ((StepRow, _STEP_COLUMNS), (ToolCallRow, _CALL_COLUMNS)):
        table = model.__table__
        session.execute(
            insert(model).from_select(
                ["run_id", *columns],
                select(
                    literal(run_id, table.c.run_id.type), *(table.c[name] for name in columns)
                ).where(table.c.run_id == previous_id),
            )
        )
    last = session.scalar(select(func.max(StepRow.step)).where(StepRow.run_id == run_id)) or 0
    session.execute(update(RunRow).where(RunRow.id == run_id).values(steps=last))
    return last
