"""Response models of schedules (mirrors of the server's api/schemas/schedules.py): a schedule,
and one fire of it with the run it made."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from agentmill.models import Run

SessionMode = Literal["new", "fixed"]
Missed = Literal["run_once", "skip"]


class Schedule(BaseModel):
    """An agent run on a cron expression (read in `timezone`) or every `interval_s` seconds."""

    id: uuid.UUID
    agent_id: uuid.UUID
    description: str
    cron: str | None
    """5 fields (minute hour day-of-month month day-of-week); None for an interval."""
    timezone: str
    """The IANA zone the cron expression is read in."""
    interval_s: int | None
    """Seconds between fires; None for a cron expression."""
    anchor_at: datetime
    """What an interval counts from."""
    input: str
    """The message each fire sends."""
    user_id: str | None
    """The runs' end user."""
    session_mode: SessionMode
    """`new`: a fresh session per fire; `fixed`: every fire in `session_id`."""
    session_id: uuid.UUID | None
    metadata: dict[str, Any]
    """Kept on every run."""
    missed: Missed
    """Fires missed while nothing ran: `run_once` (one late run stands for them) or `skip`."""
    enabled: bool
    next_fire_at: datetime | None
    """None while paused."""
    last_fire_at: datetime | None
    last_error: str | None
    """Why the schedule paused itself, if it did."""
    fires: int
    """Runs made so far."""
    created_at: datetime
    updated_at: datetime


class ScheduleFire(BaseModel):
    """One fire of a schedule and the run it made."""

    fire_at: datetime
    late: bool
    """The run stood for fires missed while nothing ran."""
    created_at: datetime
    """When the run was made."""
    run: Run | None
    """None once the run was deleted or erased."""
