"""`Schedules`: what the REST layer does with a tenant's schedules, one transaction per method
(the SQL is in agents/schedules/store.py; firing is the workers', agents/schedules/firing.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from agents.schedules import store
from agents.schedules.records import Fire, NewSchedule, Schedule
from core.db import transaction

TimeKey = tuple[datetime, uuid.UUID]


class Schedules:
    """The tenants' schedules, over one database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, tenant_id: uuid.UUID, new: NewSchedule) -> Schedule:
        """Schedule an agent; NotFound for an agent (or fixed session) the tenant lacks."""
        with transaction(self.engine) as session:
            return store.create_schedule(session, tenant_id, new)

    def page(
        self,
        tenant_id: uuid.UUID,
        *,
        agent_id: uuid.UUID | None,
        limit: int,
        after: TimeKey | None,
    ) -> list[Schedule]:
        """Schedules oldest first."""
        with transaction(self.engine) as session:
            return store.list_schedules(
                session, tenant_id, agent_id=agent_id, limit=limit, after=after
            )

    def get(self, tenant_id: uuid.UUID, schedule_id: uuid.UUID) -> Schedule:
        """One schedule, or NotFound."""
        with transaction(self.engine) as session:
            return store.get_schedule(session, tenant_id, schedule_id)

    def update(
        self, tenant_id: uuid.UUID, schedule_id: uuid.UUID, changes: dict[str, Any]
    ) -> Schedule:
        """Change the fields given (pause and resume are `enabled`)."""
        with transaction(self.engine) as session:
            return store.update_schedule(session, tenant_id, schedule_id, changes)

    def delete(self, tenant_id: uuid.UUID, schedule_id: uuid.UUID) -> None:
        """Delete a schedule (its runs stay)."""
        with transaction(self.engine) as session:
            store.delete_schedule(session, tenant_id, schedule_id)

    def fires(
        self,
        tenant_id: uuid.UUID,
        schedule_id: uuid.UUID,
        *,
        limit: int,
        before: datetime | None,
    ) -> list[Fire]:
        """The schedule's fires newest first, each with its run."""
        with transaction(self.engine) as session:
            return store.list_fires(session, tenant_id, schedule_id, limit=limit, before=before)
