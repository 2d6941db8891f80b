"""The Celery app and how runs reach it: one configuration for workers and producers.

Broker: `AGENTMILL_BROKER_URL` (Redis in production) or, unset, the database itself through
kombu's SQLAlchemy transport (embedded default, agents/worker/pg_broker.py; it polls, so a task
waits up to 0.2 s before a worker sees it). Tasks are acknowledged late and re-queued when their
worker is lost; a run is also protected by its lease and the sweeper (agents/worker/sweeper.py),
because a broker's redelivery of an unacknowledged message can take an hour (Redis's
visibility timeout).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

from celery import Celery

from agents.worker import pg_broker
from core.config import Settings
from core.db import sqlalchemy_url

EXECUTE_RUN = "agentmill.execute_run"
EXTRACT_FACTS = "agentmill.extract_facts"
QUEUE = "agentmill"

pg_broker.register()
log = logging.getLogger(__name__)

Send = Callable[[uuid.UUID], None]
"""How one run is sent: `RunSender.enqueue_run`, or a recording fake."""


def broker_url(settings: Settings, database_url: str) -> str:
    """The configured broker, or the database as one."""
    if settings.broker_url:
        return settings.broker_url
    return f"{pg_broker.SCHEME}+{sqlalchemy_url(database_url)}"


def make_celery(settings: Settings, database_url: str) -> Celery:
    """A Celery app with agentmill's task options (tasks are registered by agents.worker.main)."""
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


def send_committed(
    send: Send, run_ids: Iterable[uuid.UUID], what: str = "run", *, swept: bool = True
) -> int:
    """Send runs whose rows are committed: the one way runs reach the queue after a write.

    Only after the commit, because a worker told earlier would find nothing to do. A send that
    fails (the broker is down) is logged and left: the run stays `queued` and the workers'
    sweeper (agents/worker/sweeper.py) sends it again, so the request or run that wrote it
    still succeeds. `swept=False` for a send nothing resends (fact extraction: an exchange
    whose send is lost keeps its messages, only the extracted facts are missing). Returns how
    many were sent."""
    sent = 0
    for run_id in run_ids:
        try:
            send(run_id)
        except Exception:
            later = "the sweeper will send it later" if swept else "it is not retried"
            log.exception("%s %s not sent; %s", what, run_id, later)
        else:
            sent += 1
    return sent
