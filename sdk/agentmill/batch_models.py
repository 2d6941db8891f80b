"""Response models of batches (mirrors of the server's api/schemas/batches.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agentmill.models import Usage

BatchStatus = Literal["running", "completed", "cancelled"]
ItemStatus = Literal["pending", "queued", "running", "succeeded", "failed", "cancelled"]


class BatchCounts(BaseModel):
    """A batch's items per state."""

    pending: int
    """Waiting for a slot, or for a retry."""
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    total: int

    @property
    def finished(self) -> int:
        """Items in a final state (succeeded, failed or cancelled)."""
        return self.succeeded + self.failed + self.cancelled


class Batch(BaseModel):
    """Many inputs run on one agent in the background, with progress and usage."""

    id: uuid.UUID
    agent_id: uuid.UUID
    status: BatchStatus
    """`running` until every item is final, then `completed` or `cancelled`."""
    concurrency: int
    max_attempts: int
    cancel_requested: bool
    counts: BatchCounts
    usage: Usage
    """Summed over every attempt of every item."""
    metadata: dict[str, Any]
    webhook_url: str | None = None
    """Where the batch's end (batch.completed, batch.cancelled) is POSTed, if anywhere."""
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether the batch has ended (completed or cancelled)."""
        return self.status != "running"


class BatchResult(BaseModel):
    """One finished item of a batch (a line of its results)."""

    position: int
    """0-based order of the item as submitted."""
    input: str
    user_id: str | None
    metadata: dict[str, Any]
    status: ItemStatus
    output: str | None
    error: dict[str, Any] | None
    """The latest attempt's `{"type", "message"}`."""
    usage: Usage
    """Summed over every attempt."""
    run_id: uuid.UUID | None
    """The latest attempt's run."""
    attempts: int
    finished_at: datetime | None
