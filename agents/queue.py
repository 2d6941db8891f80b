"""The Celery app and how runs reach it: one configuration for workers and producers.

Broker: `AGENTMILL_BROKER_URL` (Redis in production) or, unset, the database itself through
kombu's SQLAlchemy transport (embedded default, agents/pg_broker.py; it polls, so a task
waits up to 0.2 s before a worker sees it). Tasks are acknowledged late and re-queued when their
worker is lost; a run is also protected by its lease and the sweeper (agents/sweeper.py),
because a broker's redelivery of an unacknowledged message can take an hour (Redis's
visibility timeout).
"""

from __future__ import annotations

import uuid
from typing import Protocol

from celery import Celery

from agents import pg_broker
from core.config import Settings
from core.db import sqlalchemy_url

EXECUTE_RUN = "agentmill.execute_run"
EXTRACT_FACTS = "agentmill.extract_facts"
QUEUE = "agentmill"

pg_broker.register()


def broker_url(settings: Settings, database_url: str) -> str:
    """The configured broker, or the database as one."""
    if settings.broker_url:
        return settings.broker_url
    return f"{pg_broker.SCHEME}+{sqlalchemy_url(database_url)}"


def make_celery(settings: Settings, database_url: str) -> Celery:
    """A Celery app with agentmill's task options (tasks are registered by agents.worker)."""
    app = Celery("agentmill", broker=broker_url(settings, database_url), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        enable_utc=True,
    )
    return app


class RunSender(Protocol):
    """What producers need of a queue: RunQueue, or a recording fake in tests."""

    def enqueue_run(self, run_id: uuid.UUID) -> None:
        """Ask a worker to execute (or resume) the run. Call only after the run is committed."""

    def enqueue_facts(self, run_id: uuid.UUID) -> None:
        """Ask a worker to extract durable facts from a finished run."""


class RunQueue:
    """Sends work to the workers; the API and the workers' sweeper use it."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue_run(self, run_id: uuid.UUID) -> None:
        """Ask a worker to execute (or resume) the run. Call only after the run is committed."""
        self.app.send_task(EXECUTE_RUN, args=[str(run_id)], queue=QUEUE)

    def enqueue_facts(self, run_id: uuid.UUID) -> None:
        """Ask a worker to extract durable facts from a finished run."""
        self.app.send_task(EXTRACT_FACTS, args=[str(run_id)], queue=QUEUE)
