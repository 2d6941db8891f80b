"""Plain data of schedules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agents.records import Run

SessionMode = Literal["new", "fixed"]
MissedPolicy = Literal["run_once", "skip"]


@dataclass(frozen=True, kw_only=True)
class NewSchedule:
    """What a tenant schedules."""

    agent_id: uuid.UUID
    input: str
    cron: str | None = None
    timezone: str = "UTC"
    interval_s: int | None = None
    start_at: datetime | None = None
    """An interval's first fire time (default: one interval from now)."""
    user_id: str | None = None
    session_mode: SessionMode = "new"
    session_id: uuid.UUID | None = None
    """`fixed`: the session every fire runs in (default: one made at the first fire)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    missed: MissedPolicy = "run_once"
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A schedule as stored, with its next fire time (None while paused)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    description: str
    cron: str | None
    timezone: str
    interval_s: int | None
    anchor_at: datetime
    input: str
    user_id: str | None
    session_mode: SessionMode
    session_id: uuid.UUID | None
    metadata: dict[str, Any]
    missed: MissedPolicy
    enabled: bool
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_error: str | None
    fires: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Fire:
    """One fire time and the run it made (None once that run was deleted or erased)."""

    fire_at: datetime
    late: bool
    """True for a run that stood for fires missed while nothing ran."""
    created_at: datetime
    run: Run | None
