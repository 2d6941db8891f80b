"""Schedule bodies: ScheduleCreate, ScheduleUpdate (PATCH), SchedulePublic, FirePublic (one
line of a schedule's run history)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from agents.schedules.records import Fire, NewSchedule, Schedule
from api.schemas.common import Inbound, Metadata
from api.schemas.runs import RunPublic
from api.schemas.sessions import MAX_MESSAGE_CHARS

MAX_INTERVAL_S = 366 * 86_400
_CRON = Field(
    default=None,
    min_length=9,
    max_length=120,
    description="5 fields (minute hour day-of-month month day-of-week), read in `timezone`.",
)
_TZ = Field(default=None, min_length=1, max_length=64, description="An IANA zone (default UTC).")
_INTERVAL = Field(default=None, ge=1, le=MAX_INTERVAL_S, description="Every this many seconds.")
_START = Field(
    default=None, description="An interval's first fire time (default: one interval from now)."
)
_USER = Field(default=None, min_length=1, max_length=256, description="The runs' end user.")
_MODE = "`new`: a fresh session per fire; `fixed`: every fire in one session."
_MISSED = "Fires missed while nothing ran: `run_once` (one late run stands for them) or `skip`."


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("needs a time zone offset (e.g. 2026-12-07T09:00:00Z)")
    return value


class ScheduleCreate(Inbound):
    """Body of POST /v1/schedules: exactly one of `cron` and `interval_s`."""

    agent_id: uuid.UUID = Field(description="The agent each fire runs.")
    input: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="The message.")
    cron: str | None = _CRON
    timezone: str | None = _TZ
    interval_s: int | None = _INTERVAL
    start_at: datetime | None = _START
    user_id: str | None = _USER
    session_mode: Literal["new", "fixed"] = Field(default="new", description=_MODE)
    session_id: uuid.UUID | None = Field(
        default=None, description="`fixed`: an existing session (default: made at the first fire)."
    )
    metadata: Metadata = Field(default_factory=dict, description="Kept on every run.")
    missed: Literal["run_once", "skip"] = Field(default="run_once", description=_MISSED)
    enabled: bool = True
    description: str = Field(default="", max_length=500)

    _inputs = field_validator("input")(classmethod(lambda cls, v: _not_blank(v)))
    _start = field_validator("start_at")(classmethod(lambda cls, v: _aware(v)))

    @model_validator(mode="after")
    def one_timing(self) -> Self:
        """Exactly one of cron and interval_s; start_at only with an interval."""
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of cron and interval_s")
        if self.start_at is not None and self.interval_s is None:
            raise ValueError("start_at is for interval_s schedules")
        if self.session_id is not None and self.session_mode != "fixed":
            raise ValueError("session_id is for session_mode 'fixed'")
        return self

    def new_schedule(self) -> NewSchedule:
        """The agents layer's form."""
        return NewSchedule(
            agent_id=self.agent_id,
            input=self.input,
            cron=self.cron,
            timezone=self.timezone or "UTC",
            interval_s=self.interval_s,
            start_at=self.start_at,
            user_id=self.user_id,
            session_mode=self.session_mode,
            session_id=self.session_id,
            metadata=self.metadata,
            missed=self.missed,
            enabled=self.enabled,
            description=self.description,
        )


class ScheduleUpdate(Inbound):
    """Body of PATCH /v1/schedules/{id}: the fields sent change. `cron` replaces an interval,
    `interval_s` a cron expression; `enabled: false` pauses, `true` resumes (at the next fire
    time after now). `user_id` and `session_id` may be set to null."""

    input: str | None = Field(default=None, min_length=1, max_length=MAX_MESSAGE_CHARS)
    cron: str | None = _CRON
    timezone: str | None = _TZ
    interval_s: int | None = _INTERVAL
    start_at: datetime | None = _START
    user_id: str | None = _USER
    session_mode: Literal["new", "fixed"] | None = None
    session_id: uuid.UUID | None = None
    metadata: Metadata | None = None
    missed: Literal["run_once", "skip"] | None = None
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=500)

    _inputs = field_validator("input")(classmethod(lambda cls, v: _not_blank(v)))
    _start = field_validator("start_at")(classmethod(lambda cls, v: _aware(v)))

    @field_validator(
        "input",
        "cron",
        "timezone",
        "interval_s",
        "start_at",
        "session_mode",
        "metadata",
        "missed",
        "enabled",
        "description",
        mode="before",
    )
    @classmethod
    def not_null(cls, value: Any) -> Any:
        """Only `user_id` and `session_id` can be set to null."""
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    @model_validator(mode="after")
    def one_timing(self) -> Self:
        """Not both cron and interval_s."""
        if self.cron is not None and self.interval_s is not None:
            raise ValueError("give one of cron and interval_s, not both")
        if self.start_at is not None and self.cron is not None:
            raise ValueError("start_at is for interval_s schedules")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields sent."""
        return self.model_dump(exclude_unset=True)


class SchedulePublic(BaseModel):
    """A schedule as the API returns it."""

    id: uuid.UUID
    agent_id: uuid.UUID
    description: str
    cron: str | None
    timezone: str
    interval_s: int | None
    anchor_at: datetime = Field(description="What an interval counts from.")
    input: str
    user_id: str | None
    session_mode: Literal["new", "fixed"]
    session_id: uuid.UUID | None
    metadata: Metadata
    missed: Literal["run_once", "skip"]
    enabled: bool
    next_fire_at: datetime | None = Field(description="Null while paused.")
    last_fire_at: datetime | None
    last_error: str | None = Field(description="Why the schedule paused itself, if it did.")
    fires: int = Field(description="Runs made so far.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, schedule: Schedule) -> SchedulePublic:
        """From the agents layer's record."""
        return cls(
            id=schedule.id,
            agent_id=schedule.agent_id,
            description=schedule.description,
            cron=schedule.cron,
            timezone=schedule.timezone,
            interval_s=schedule.interval_s,
            anchor_at=schedule.anchor_at,
            input=schedule.input,
            user_id=schedule.user_id,
            session_mode=schedule.session_mode,
            session_id=schedule.session_id,
            metadata=schedule.metadata,
            missed=schedule.missed,
            enabled=schedule.enabled,
            next_fire_at=schedule.next_fire_at,
            last_fire_at=schedule.last_fire_at,
            last_error=schedule.last_error,
            fires=schedule.fires,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


class FirePublic(BaseModel):
    """One fire of a schedule and the run it made."""

    fire_at: datetime
    late: bool = Field(description="The run stood for fires missed while nothing ran.")
    created_at: datetime = Field(description="When the run was made.")
    run: RunPublic | None = Field(description="Null once the run was deleted or erased.")

    @classmethod
    def of(cls, fire: Fire) -> FirePublic:
        """From the agents layer's record."""
        return cls(
            fire_at=fire.fire_at,
            late=fire.late,
            created_at=fire.created_at,
            run=RunPublic.of(fire.run) if fire.run else None,
        )
