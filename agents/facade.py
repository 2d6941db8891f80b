"""`Agents`: what the REST layer does with agents, their sessions and messages, and erasure.

Each method is one transaction of its own, scoped to a tenant: a row of another tenant is
NotFound, like a missing one. The SQL is in agents/agent_store.py and agents/erasure.py; the
routes call this, as they call `MemoryStore` for memory, and never open a transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from agents import agent_store, erasure
from agents.erasure import ErasureReport
from agents.records import Agent, AgentChanges, ChatSession, Message, NewAgent
from core.db import transaction

TimeKey = tuple[datetime, uuid.UUID]


class Agents:
    """Agents, sessions and messages of the tenants, over one database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, tenant_id: uuid.UUID, new: NewAgent) -> Agent:
        """A new agent; Conflict when the tenant has one of that name."""
        with transaction(self.engine) as session:
            return agent_store.create_agent(session, tenant_id, new)

    def page(self, tenant_id: uuid.UUID, *, limit: int, after: TimeKey | None) -> list[Agent]:
        """Agents oldest first, `limit` of them after the (created_at, id) key `after`."""
        with transaction(self.engine) as session:
            return agent_store.list_agents(session, tenant_id, limit=limit, after=after)

    def get(self, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Agent:
        """One agent, or NotFound."""
        with transaction(self.engine) as session:
            return agent_store.get_agent(session, tenant_id, agent_id)

    def update(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        changes: Callable[[Agent], AgentChanges],
    ) -> Agent:
        """Apply `changes(current)` (a PATCH may depend on what is stored: the memory policy
        changes field by field), read and written in one transaction."""
        with transaction(self.engine) as session:
            current = agent_store.get_agent(session, tenant_id, agent_id)
            return agent_store.update_agent(session, tenant_id, agent_id, changes(current))

    def delete(self, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        """Delete an agent with its sessions and runs; AgentBusy while a run is active."""
        with transaction(self.engine) as session:
            agent_store.delete_agent(session, tenant_id, agent_id)

    def start_session(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        *,
        user_id: str | None,
        metadata: Mapping[str, Any],
    ) -> ChatSession:
        """A new conversation with the agent, of one end user when `user_id` is given."""
        with transaction(self.engine) as session:
            return agent_store.create_session(
                session, tenant_id, agent_id, user_id=user_id, metadata=metadata
            )

    def sessions(
        self,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        *,
        user_id: str | None,
        limit: int,
        before: TimeKey | None,
    ) -> list[ChatSession]:
        """The agent's sessions newest first (one end user's with `user_id`)."""
        with transaction(self.engine) as session:
            return agent_store.list_sessions(
                session, tenant_id, agent_id, user_id=user_id, limit=limit, before=before
            )

    def session(self, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ChatSession:
        """One session, or NotFound."""
        with transaction(self.engine) as session:
            return agent_store.get_session(session, tenant_id, session_id)

    def messages(
        self, tenant_id: uuid.UUID, session_id: uuid.UUID, *, limit: int, after_seq: int
    ) -> list[Message]:
        """A session's messages oldest first, after the seq `after_seq`."""
        with transaction(self.engine) as session:
            return agent_store.list_messages(
                session, tenant_id, session_id, limit=limit, after_seq=after_seq
            )

    def delete_session(self, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ErasureReport:
        """Delete a session with everything under it; what went, by kind."""
        with transaction(self.engine) as session:
            return erasure.delete_session(session, tenant_id, session_id)

    def erase_user(
        self, tenant_id: uuid.UUID, user_id: str, *, agent_id: uuid.UUID | None = None
    ) -> ErasureReport:
        """Erase what is stored about one end user (of one agent, or of them all)."""
        with transaction(self.engine) as session:
            return erasure.erase_user(session, tenant_id, user_id, agent_id=agent_id)
