"""Test doubles of the REST tests: a recording queue, and stand-ins for a worker that move a
run along the way agents/runs/executor.py does, through the same store functions, so the API can be
tested without Celery or a model."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from agents.records import Run, RunStatus
from agents.runs import store as run_store
from agents.runs.events import EventData, RunStarted, append_event
from core.db import transaction

OWNER = "test-worker"

Headers = dict[str, str]


class RecordingQueue:
    """A RunSender that records what it was asked to send (the worker tests use Celery)."""

    def __init__(self) -> None:
        self.runs: list[uuid.UUID] = []
        self.facts: list[uuid.UUID] = []

    def enqueue_run(self, run_id: uuid.UUID) -> None:
        """Record a run sent to the workers."""
        self.runs.append(run_id)

    def enqueue_facts(self, run_id: uuid.UUID) -> None:
        """Record a fact extraction asked for."""
        self.facts.append(run_id)


def load(engine: Engine, run_id: str | uuid.UUID) -> Run:
    """The run, by id alone."""
    with transaction(engine) as session:
        run = run_store.load_run(session, uuid.UUID(str(run_id)))
    assert run is not None
    return run


def start(engine: Engine, run_id: str | uuid.UUID) -> None:
    """Claim the run, as a worker does (status running, run.started)."""
    run = load(engine, run_id)
    with transaction(engine) as session:
        assert run_store.claim(session, run.id, OWNER, 30.0) is not None
        append_event(session, run.tenant_id, run.id, RunStarted(attempt=1))


def event(engine: Engine, run_id: str | uuid.UUID, data: EventData) -> int:
    """Append one event; returns its seq."""
    run = load(engine, run_id)
    with transaction(engine) as session:
        return append_event(session, run.tenant_id, run.id, data)


def finish(
    engine: Engine,
    run_id: str | uuid.UUID,
    status: RunStatus = "succeeded",
    output: str | None = "hi",
) -> None:
    """End a claimed run (the answer message and the final event)."""
    with transaction(engine) as session:
        row = run_store.owned(session, uuid.UUID(str(run_id)), OWNER)
        run_store.finish(session, row, status, stop_reason="answer", output=output)
