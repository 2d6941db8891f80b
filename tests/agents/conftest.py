"""Fixtures for the step loop on the real embedded Postgres: a tenant with an agent and a
session, an executor over a scripted model, and helpers to create runs."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agents import agent_store
from agents.records import AgentChanges, ChatSession, Event, MemoryPolicy, NewAgent, Run, Step
from agents.runs import store as run_store
from agents.runs.events import read_events
from agents.runs.executor import RunExecutor, Services
from agents.runs.portal import Portal
from agents.tools.builtin import BUILTIN_TOOLS
from agents.tools.memory import MEMORY_TOOLS
from agents.tools.registry import Tool, ToolRegistry
from core.config import Settings
from core.db import create_db_engine, transaction
from core.tenants import ensure_tenant
from inference.client.model_client import ModelClient
from memory.embedder import HashingEmbedder
from memory.store import MemoryStore
from tests.agents.pg_proxy import PgProxy


@pytest.fixture
def loop_settings(tmp_path: Path, database_url: str) -> Settings:
    """Short leases so that tests of lapsed leases are quick."""
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        run_lease_s=2.0,
        model_retry_s=1.0,
        db_retry_s=5.0,
    )


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The event-loop thread model calls and tools run on."""
    p = Portal()
    yield p
    p.close()


@dataclass
class Sent:
    """Records what the executor sends to the queue."""

    runs: list[uuid.UUID] = field(default_factory=list)
    facts: list[uuid.UUID] = field(default_factory=list)


@dataclass
class World:
    """A tenant with one agent and one session, and the means to run messages."""

    engine: Engine
    settings: Settings
    portal: Portal
    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    chat: ChatSession
    memory: MemoryStore
    sent: Sent
    registry: ToolRegistry

    def executor(
        self, model: ModelClient, owner: str = "test-worker", *, engine: Engine | None = None
    ) -> RunExecutor:
        """An executor over `model` with this world's services (on `engine`, when given: one
        through a PgProxy, to cut its database off)."""
        services = Services(
            engine=engine or self.engine,
            model=model,
            tools=self.registry,
            portal=self.portal,
            settings=self.settings,
            memory=self.memory,
            enqueue_run=self.sent.runs.append,
            after_run=self.sent.facts.append,
        )
        return RunExecutor(services, owner)

    def message(self, content: str, *, chat: ChatSession | None = None, queue: bool = False) -> Run:
        """Write a user message (and its queued run)."""
        target = chat or self.chat
        with transaction(self.engine) as session:
            return run_store.create_run(
                session, self.tenant_id, target.id, content, queue=queue
            ).run

    def new_session(self, user_id: str | None = "user-1") -> ChatSession:
        """Another session of the same agent."""
        with transaction(self.engine) as session:
            return agent_store.create_session(
                session, self.tenant_id, self.agent_id, user_id=user_id, metadata={}
            )

    def run(self, run_id: uuid.UUID) -> Run:
        """The run as stored now."""
        with transaction(self.engine) as session:
            return run_store.get_run(session, self.tenant_id, run_id)

    def steps(self, run_id: uuid.UUID) -> list[Step]:
        """Its persisted steps."""
        with transaction(self.engine) as session:
            return run_store.load_steps(session, run_id)

    def events(self, run_id: uuid.UUID) -> list[Event]:
        """Its event log."""
        with transaction(self.engine) as session:
            return read_events(session, self.tenant_id, run_id)

    def update_agent(self, **changes: Any) -> None:
        """Change the agent's spec."""
        with transaction(self.engine) as session:
            agent_store.update_agent(
                session, self.tenant_id, self.agent_id, AgentChanges(**changes)
            )


def make_world(
    engine: Engine, settings: Settings, portal: Portal, extra_tools: list[Tool | Callable[..., Any]]
) -> World:
    """Build a world; the agent may call every built-in, memory and extra tool."""
    registry = ToolRegistry([*BUILTIN_TOOLS, *MEMORY_TOOLS, *extra_tools])
    memory = MemoryStore(engine, HashingEmbedder(), settings)
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, f"t-{uuid.uuid4().hex[:8]}")
        agent = agent_store.create_agent(
            session,
            tenant_id,
            NewAgent(
                name="helper",
                instructions="You help.",
                model="local",
                tools=tuple(registry.names()),
                memory=MemoryPolicy(extract_facts=False),
                max_steps=5,
            ),
        )
        chat = agent_store.create_session(
            session, tenant_id, agent.id, user_id="user-1", metadata={}
        )
    return World(engine, settings, portal, tenant_id, agent.id, chat, memory, Sent(), registry)


WorldFactory = Callable[..., World]


@pytest.fixture
def new_world(engine: Engine, loop_settings: Settings, portal: Portal) -> Iterator[WorldFactory]:
    """Builds worlds (settings and extra tools may be given); closes their stores after."""
    made: list[World] = []

    def build(
        settings: Settings | None = None, extra_tools: list[Tool | Callable[..., Any]] | None = None
    ) -> World:
        world = make_world(engine, settings or loop_settings, portal, extra_tools or [])
        made.append(world)
        return world

    yield build
    for world in made:
        world.memory.close()


@pytest.fixture
def world(new_world: WorldFactory) -> World:
    """A world with the built-in and memory tools."""
    return new_world()


@pytest.fixture
def pg_proxy(database_url: str) -> Iterator[PgProxy]:
    """A proxy in front of the test's database (a short directory: socket paths are limited)."""
    directory = Path(tempfile.mkdtemp(prefix="pgp", dir="/tmp"))
    with PgProxy(database_url, directory) as proxy:
        yield proxy
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def proxied_engine(pg_proxy: PgProxy) -> Iterator[Engine]:
    """An engine whose connections go through `pg_proxy` (already migrated: same database)."""
    eng = create_db_engine(pg_proxy.url, connect_timeout_s=1)
    yield eng
    eng.dispose()
