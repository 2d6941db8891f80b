"""`Batches`, the facade the routes call, on the real embedded Postgres: a created batch's
first runs are sent only after the commit, a failed send loses nothing, and another tenant's
batch is NotFound."""

from __future__ import annotations

import uuid

import pytest

from agents.batches.facade import Batches
from agents.records import NewBatch, NewBatchItem
from agents.runs import store as run_store
from core.db import transaction
from core.errors import NotFound
from tests.agents.conftest import World, WorldFactory


def _items(count: int) -> list[NewBatchItem]:
    return [NewBatchItem(f"question {i}", user_id=f"u{i}") for i in range(count)]


def test_create_sends_the_first_runs_once_they_are_committed(world: World) -> None:
    visible: list[str] = []

    def send(run_id: uuid.UUID) -> None:  # a worker reading the run as it is sent
        with transaction(world.engine) as session:
            visible.append(run_store.get_run(session, world.tenant_id, run_id).status)

    batches = Batches(world.engine, send)
    batch = batches.create(
        world.tenant_id,
        NewBatch(
            agent_id=world.agent_id,
            items=tuple(_items(5)),
            concurrency=2,
            max_attempts=1,
            metadata={},
        ),
    )
    assert visible == ["queued", "queued"]
    assert batches.get(world.tenant_id, batch.id).counts.total == 5
    assert [b.id for b in batches.page(world.tenant_id, limit=10, before=None)] == [batch.id]


def test_a_failed_send_keeps_the_batch_and_its_queued_runs(world: World) -> None:
    def down(run_id: uuid.UUID) -> None:
        raise ConnectionError("broker down")

    batches = Batches(world.engine, down)
    batch = batches.create(
        world.tenant_id,
        NewBatch(
            agent_id=world.agent_id,
            items=tuple(_items(3)),
            concurrency=3,
            max_attempts=1,
            metadata={},
        ),
    )
    stored = batches.get(world.tenant_id, batch.id)
    assert stored.status == "running"
    assert stored.counts.queued == 3  # the sweeper sends them


def test_an_unknown_agent_creates_nothing(world: World) -> None:
    batches = Batches(world.engine, world.sent.runs.append)
    with pytest.raises(NotFound):
        batches.create(
            world.tenant_id,
            NewBatch(
                agent_id=uuid.uuid4(),
                items=tuple(_items(2)),
                concurrency=1,
                max_attempts=1,
                metadata={},
            ),
        )
    assert batches.page(world.tenant_id, limit=10, before=None) == []
    assert world.sent.runs == []


def test_another_tenants_batch_is_not_found(world: World, new_world: WorldFactory) -> None:
    other = new_world()
    batches = Batches(world.engine, world.sent.runs.append)
    batch = batches.create(
        world.tenant_id,
        NewBatch(
            agent_id=world.agent_id,
            items=tuple(_items(1)),
            concurrency=1,
            max_attempts=1,
            metadata={},
        ),
    )
    with pytest.raises(NotFound):
        batches.get(other.tenant_id, batch.id)
    with pytest.raises(NotFound):
        batches.cancel(other.tenant_id, batch.id)
    assert batches.finished_items(other.tenant_id, batch.id, after=-1, skip=(), limit=10) == []
    assert batches.page(other.tenant_id, limit=10, before=None) == []
    assert batches.cancel(world.tenant_id, batch.id).status in ("cancelled", "running")
