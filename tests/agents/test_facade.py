"""`Agents`, the facade the routes call, on the real embedded Postgres: each call is one
transaction scoped to a tenant, a change is read and written in the same transaction, and a
failed write leaves nothing behind."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine

from agents.facade import Agents
from agents.records import Agent, AgentChanges, MemoryPolicy, NewAgent
from core.db import transaction
from core.errors import Conflict, NotFound
from core.tenants import ensure_tenant


def _tenant(engine: Engine) -> uuid.UUID:
    with transaction(engine) as session:
        tenant_id, _ = ensure_tenant(session, f"t-{uuid.uuid4().hex[:8]}")
    return tenant_id


def _new(name: str = "helper", **values: Any) -> NewAgent:
    return NewAgent(name=name, model="local", max_steps=3, **values)


def test_create_get_page_and_delete(engine: Engine) -> None:
    agents, tenant = Agents(engine), _tenant(engine)
    made = [agents.create(tenant, _new(f"a{i}", tools=("calculator",))) for i in range(3)]
    assert agents.get(tenant, made[0].id) == made[0]
    assert made[0].tools == ("calculator",)
    assert made[0].memory == MemoryPolicy()
    first = agents.page(tenant, limit=2, after=None)
    rest = agents.page(tenant, limit=2, after=(first[-1].created_at, first[-1].id))
    assert [a.id for a in [*first, *rest]] == [a.id for a in made]
    agents.delete(tenant, made[1].id)
    with pytest.raises(NotFound):
        agents.get(tenant, made[1].id)


def test_another_tenant_sees_nothing_and_changes_nothing(engine: Engine) -> None:
    agents, mine, theirs = Agents(engine), _tenant(engine), _tenant(engine)
    agent = agents.create(mine, _new())
    for call in (
        lambda: agents.get(theirs, agent.id),
        lambda: agents.update(theirs, agent.id, lambda _: AgentChanges(name="stolen")),
        lambda: agents.delete(theirs, agent.id),
        lambda: agents.start_session(theirs, agent.id, user_id=None, metadata={}),
    ):
        with pytest.raises(NotFound):
            call()
    assert agents.page(theirs, limit=10, after=None) == []
    assert agents.get(mine, agent.id) == agent


def test_a_change_sees_the_stored_agent_and_writes_only_what_it_sets(engine: Engine) -> None:
    agents, tenant = Agents(engine), _tenant(engine)
    agent = agents.create(tenant, _new(temperature=0.5, memory=MemoryPolicy(recall_k=3)))
    seen: list[Agent] = []

    def changes(current: Agent) -> AgentChanges:
        seen.append(current)
        return AgentChanges(temperature=None, memory=MemoryPolicy(recall_k=9))

    changed = agents.update(tenant, agent.id, changes)
    assert seen == [agent]
    assert changed.temperature is None
    assert changed.memory.recall_k == 9
    assert (changed.name, changed.instructions, changed.tools) == (
        agent.name,
        agent.instructions,
        agent.tools,
    )
    assert changed.updated_at >= agent.updated_at


def test_a_taken_name_is_a_conflict_and_changes_nothing(engine: Engine) -> None:
    agents, tenant = Agents(engine), _tenant(engine)
    agents.create(tenant, _new("first"))
    second = agents.create(tenant, _new("second"))
    with pytest.raises(Conflict):
        agents.create(tenant, _new("first"))
    with pytest.raises(Conflict):
        agents.update(tenant, second.id, lambda _: AgentChanges(name="first", max_steps=9))
    assert agents.get(tenant, second.id) == second
    assert len(agents.page(tenant, limit=10, after=None)) == 2


def test_sessions_messages_and_erasure(engine: Engine) -> None:
    agents, tenant = Agents(engine), _tenant(engine)
    agent = agents.create(tenant, _new())
    ann = agents.start_session(tenant, agent.id, user_id="ann", metadata={"k": 1})
    bob = agents.start_session(tenant, agent.id, user_id="bob", metadata={})
    assert agents.session(tenant, ann.id) == ann
    listed = agents.sessions(tenant, agent.id, user_id=None, limit=10, before=None)
    assert [s.id for s in listed] == [bob.id, ann.id]  # newest first
    only_ann = agents.sessions(tenant, agent.id, user_id="ann", limit=10, before=None)
    assert [s.id for s in only_ann] == [ann.id]
    assert agents.messages(tenant, ann.id, limit=10, after_seq=0) == []
    report = agents.erase_user(tenant, "ann", agent_id=agent.id)
    assert report.sessions == 1
    with pytest.raises(NotFound):
        agents.session(tenant, ann.id)
    assert agents.delete_session(tenant, bob.id).sessions == 1
    with pytest.raises(NotFound):
        agents.delete_session(tenant, bob.id)
