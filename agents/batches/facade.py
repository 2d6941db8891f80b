"""`Batches`: what the REST layer does with batches, each call one transaction scoped to a
tenant. A created batch's first runs are sent only after its commit (the sweeper resends what
a failed send left queued). The SQL is in agents/batches/store.py and lifecycle.py."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Engine

from agents.batches import lifecycle
from agents.batches import store as batch_store
from agents.records import Batch, BatchItem, NewBatch
from agents.worker.queue import Send, send_committed
from core.db import transaction


class Batches:
    """The tenants' batches, over one database engine; `send` enqueues a run."""

    def __init__(self, engine: Engine, send: Send) -> None:
        self.engine = engine
        self.send = send

    def create(self, tenant_id: uuid.UUID, new: NewBatch) -> Batch:
        """Write a batch of the tenant's agent, start its first items and send their runs."""
        with transaction(self.engine) as session:
            batch, started = lifecycle.create_batch(session, tenant_id, new)
        send_committed(self.send, started, "batch run")
        return batch

    def page(
        self, tenant_id: uuid.UUID, *, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[Batch]:
        """Batches newest first, after the (created_at, id) key `before`."""
        with transaction(self.engine) as session:
            return batch_store.list_batches(session, tenant_id, limit=limit, before=before)

    def get(self, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
        """One batch with its counts, or NotFound."""
        with transaction(self.engine) as session:
            return batch_store.get_batch(session, tenant_id, batch_id)

    def cancel(self, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
        """Stop starting items and cancel the running ones."""
        with transaction(self.engine) as session:
            return lifecycle.cancel_batch(session, tenant_id, batch_id)

    def finished_items(
        self,
        tenant_id: uuid.UUID,
        batch_id: uuid.UUID,
        *,
        after: int,
        skip: Collection[int],
        limit: int,
    ) -> list[BatchItem]:
        """Final items past position `after`, in position order, leaving out `skip`."""
        with transaction(self.engine) as session:
            return batch_store.finished_items(
                session, tenant_id, batch_id, after=after, skip=skip, limit=limit
            )
