"""The worker: `celery -A agents.worker.main worker` (or `agentmill worker`).

Importing this module builds the Celery app from the settings. Each worker process builds its
services once (database engine, model client, tools, memory store with its embedder, the
event-loop portal) and runs runs in a pool of threads; a sweeper thread re-queues lost runs,
a webhook deliverer sends the outbox (agents/webhooks/delivery.py), a scheduler fires due
schedules (agents/schedules/firing.py),
another keeps the memory scopes' own vector indexes (memory.scope_indexes) and a cleaner
deletes what the retention settings no longer keep (agents.worker.cleaner).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from functools import lru_cache
from typing import Any

from celery import signals

from agents import agent_store
from agents.mcp.sources import McpSources
from agents.runs import store as run_store
from agents.runs.executor import RunExecutor, Services
from agents.runs.facts import extract_facts
from agents.runs.portal import Portal
from agents.schedules.firing import fire_due
from agents.tools.builtin import BUILTIN_TOOLS
from agents.tools.memory import MEMORY_TOOLS
from agents.tools.registry import ToolRegistry, load_entry_point_tools, load_module_tools
from agents.webhooks.delivery import Deliverer
from agents.worker.cleaner import Cleaner, Retention
from agents.worker.heartbeat import Heartbeat
from agents.worker.queue import EXECUTE_RUN, EXTRACT_FACTS, RunQueue, make_celery
from agents.worker.queue import QUEUE as QUEUE_NAME
from agents.worker.sweeper import sweep_once
from core.config import Settings, load_settings
from core.connect import database_url
from core.db import create_db_engine, transaction
from core.metrics import serve_worker_metrics
from core.periodic import Periodic
from core.tracing import configure_tracing, flush_traces, instrument_engine
from inference.bundled import served_model_id
from inference.client.router import RouterClient
from inference.embedder import configured_embedder
from memory.scope_indexes import ScopeIndexer
from memory.store import MemoryStore

log = logging.getLogger(__name__)


SETTINGS = load_settings()
DATABASE_URL = database_url(SETTINGS)
configure_tracing(SETTINGS, "worker")  # before the app: Celery's signals carry the context
app = make_celery(SETTINGS, DATABASE_URL)
QUEUE = RunQueue(app)


def build_tools(settings: Settings) -> ToolRegistry:
    """Built-in and memory tools, then deployers' (entry points and AGENTMILL_TOOL_MODULES)."""
    registry = ToolRegistry([*BUILTIN_TOOLS, *MEMORY_TOOLS])
    for extra in (*load_entry_point_tools(), *load_module_tools(settings.tool_modules)):
        registry.register(extra)
    return registry


@lru_cache(maxsize=1)
def services() -> Services:
    """This process's services, built on first use."""
    settings = SETTINGS
    engine = create_db_engine(
        DATABASE_URL,
        connect_timeout_s=settings.db_connect_timeout_s,
        pool_size=settings.worker_concurrency + 2,
    )
    instrument_engine(engine)
    memory = MemoryStore(engine, configured_embedder(settings), settings)
    portal = Portal()
    return Services(
        engine=engine,
        model=RouterClient(settings, served_model_id(settings)),
        tools=build_tools(settings),
        portal=portal,
        settings=settings,
        memory=memory,
        mcp=McpSources(engine, settings, portal),
        enqueue_run=QUEUE.enqueue_run,
        after_run=QUEUE.enqueue_facts,
    )


@lru_cache(maxsize=1)
def executor() -> RunExecutor:
    """This process's executor; its owner name is unique per process start."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return RunExecutor(services(), owner)


@app.task(name=EXECUTE_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_run(run_id: str) -> None:
    """Execute or resume one run (idempotent: a finished or held run is left alone)."""
    executor().execute(uuid.UUID(run_id))


@app.task(name=EXTRACT_FACTS, acks_late=True, ignore_result=True)
def extract_run_facts(run_id: str) -> None:
    """Store the durable facts of a succeeded run, if its agent asks for them."""
    svc = services()
    with transaction(svc.engine) as session:
        run = run_store.load_run(session, uuid.UUID(run_id))
        if run is None or run.status != "succeeded" or svc.memory is None:
            return
        agent = agent_store.get_agent(session, run.tenant_id, run.agent_id)
        chat = agent_store.get_session(session, run.tenant_id, run.session_id)
    if not agent.memory.extract_facts:
        return
    stored = svc.portal.call(extract_facts(svc.model, svc.memory, agent, chat, run))
    log.info("run %s: %d fact(s) stored", run_id, stored)


_periodic: list[Periodic] = []
_heartbeats: list[Heartbeat] = []
_deliverers: list[Deliverer] = []


def heartbeat_safely(heartbeat: Heartbeat) -> None:
    """Beat once now; a database that is down is only logged (the periodic beat retries)."""
    try:
        heartbeat.beat()
    except Exception:
        log.warning("worker heartbeat failed; retrying in %.0fs", SETTINGS.worker_heartbeat_s)


@signals.worker_ready.connect
def _start_periodic(**_: Any) -> None:
    svc = services()
    if SETTINGS.worker_metrics_port is not None:
        serve_worker_metrics(SETTINGS.worker_metrics_port)
    interval = SETTINGS.sweep_interval_s
    tasks = [
        Periodic("agentmill-sweeper", interval, lambda: sweep_once(svc.engine, QUEUE, interval))
    ]
    indexer = ScopeIndexer(
        svc.engine,
        min_rows=SETTINGS.memory_scope_index_min_rows,
        max_scopes=SETTINGS.memory_scope_index_max,
    )
    tasks.append(
        Periodic(
            "agentmill-scope-indexer", SETTINGS.memory_scope_index_interval_s, indexer.run_once
        )
    )
    grace = SETTINGS.schedule_grace_s
    tasks.append(
        Periodic(
            "agentmill-scheduler",
            SETTINGS.schedule_poll_s,
            lambda: fire_due(svc.engine, QUEUE.enqueue_run, grace),
        )
    )
    cleaner = Cleaner(svc.engine, Retention.of(SETTINGS))
    tasks.append(Periodic("agentmill-cleaner", SETTINGS.retention_interval_s, cleaner.run_once))
    deliverer = Deliverer(svc.engine, SETTINGS)
    deliverer.start()
    _deliverers.append(deliverer)
    heartbeat = Heartbeat(svc.engine, SETTINGS.worker_concurrency)
    _heartbeats.append(heartbeat)
    heartbeat_safely(heartbeat)  # /readyz sees this worker at once
    tasks.append(Periodic("agentmill-heartbeat", SETTINGS.worker_heartbeat_s, heartbeat.beat))
    for task in tasks:
        task.start()
    _periodic.extend(tasks)


@signals.worker_shutdown.connect
def _stop_periodic(**_: Any) -> None:
    for task in _periodic:
        task.stop()
    flush_traces()
    for deliverer in _deliverers:
        deliverer.stop()
    for heartbeat in _heartbeats:
        try:
            heartbeat.stop()
        except Exception:  # the database may be gone at shutdown; the row just ages out
            log.warning("worker heartbeat row not removed", exc_info=True)
    mcp = services().mcp if services.cache_info().currsize else None
    if mcp is not None:  # stdio servers' processes end with their sessions
        try:
            mcp.close()
        except Exception:
            log.warning("MCP sessions not closed cleanly", exc_info=True)


def run_worker(concurrency: int | None = None) -> int:
    """`agentmill worker`: a worker on the configured broker until SIGTERM/SIGINT."""
    argv = ["worker", "--loglevel", SETTINGS.log_level, "--pool", "threads"]
    argv += ["--concurrency", str(concurrency or SETTINGS.worker_concurrency)]
    argv += ["--queues", QUEUE_NAME, "--without-gossip", "--without-mingle"]
    app.worker_main(argv)
    return 0
