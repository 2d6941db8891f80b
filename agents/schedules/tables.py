"""Table models of schedules; the DDL is migration 0017."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


def _at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class ScheduleRow(Base):
    """An agent that runs on a cron expression or an interval."""

    __tablename__ = "schedules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    cron: Mapped[str | None] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    interval_s: Mapped[int | None]
    anchor_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    input: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(256))
    session_mode: Mapped[str] = mapped_column(String(8), server_default="new")
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL")
    )
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    missed: Mapped[str] = mapped_column(String(16), server_default="run_once")
    enabled: Mapped[bool] = mapped_column(server_default="true")
    next_fire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_fire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    fires: Mapped[int] = mapped_column(server_default="0")
    created_at: Mapped[datetime] = _at()
    updated_at: Mapped[datetime] = _at()


class FireRow(Base):
    """One fire time of a schedule and the run it made: the primary key is the guarantee
    that a fire time becomes at most one run."""

    __tablename__ = "schedule_fires"

    schedule_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    fire_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    late: Mapped[bool] = mapped_column(server_default="false")
    """True for the one run that stood for fires missed while nothing ran (`run_once`)."""
    created_at: Mapped[datetime] = _at()
