"""`Runs`: what the REST layer reads of runs (status, steps, a session's runs), each read one
transaction scoped to a tenant. Creating and cancelling runs is api/dispatch.py's job: it sends
the task after the commit. The SQL is in agents/runs/store.py."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Engine

from agents.records import Run, RunFilter, Step
from agents.runs import store as run_store
from core.db import transaction


class Runs:
    """The tenants' runs, over one database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run:
        """One run, or NotFound."""
        with transaction(self.engine) as session:
            return run_store.get_run(session, tenant_id, run_id)

    def steps(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> list[Step]:
        """Every persisted step of the run in order, with its tool calls."""
        with transaction(self.engine) as session:
            return run_store.list_steps(session, tenant_id, run_id)

    def of_tenant(
        self,
        tenant_id: uuid.UUID,
        where: RunFilter,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
    ) -> list[Run]:
        """The tenant's runs matching `where`, newest first, after the key `before`."""
        with transaction(self.engine) as session:
            return run_store.list_tenant_runs(session, tenant_id, where, limit=limit, before=before)

    def of_session(
        self,
        tenant_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
    ) -> list[Run]:
        """The session's runs newest first, after the (created_at, id) key `before`."""
        with transaction(self.engine) as session:
            return run_store.list_runs(session, tenant_id, session_id, limit=limit, before=before)
