"""SQL for agents, sessions and messages. Every query is scoped to the caller's tenant; a row of
another tenant is indistinguishable from a missing one (NotFound)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agents.errors import AgentBusy
from agents.mcp import store as mcp_store
from agents.records import (
    ACTIVE_STATUSES,
    Agent,
    AgentChanges,
    ApprovalPolicy,
    ChatSession,
    McpServerUse,
    MemoryPolicy,
    Message,
    NewAgent,
    ToolChoice,
)
from agents.tables import AgentRow, MessageRow, RunRow, SessionRow
from core.errors import Conflict, NotFound
from memory import erasure


def _agent(row: AgentRow) -> Agent:
    return Agent(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        instructions=row.instructions,
        model=row.model,
        tools=tuple(row.tools),
        memory=MemoryPolicy.from_json(dict(row.memory)),
        max_steps=row.max_steps,
        tool_choice=_tool_choice(row.tool_choice),
        approval=ApprovalPolicy.from_json(dict(row.approval)),
        mcp_servers=tuple(McpServerUse.from_json(dict(use)) for use in row.mcp_servers),
        parallel_tool_calls=row.parallel_tool_calls,
        temperature=row.temperature,
        metadata=dict(row.metadata_),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _tool_choice(value: str) -> ToolChoice:
    if value == "required":
        return "required"
    return "none" if value == "none" else "auto"


def _session(row: SessionRow) -> ChatSession:
    return ChatSession(
        id=row.id,
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        user_id=row.user_id,
        metadata=dict(row.metadata_),
        summary=row.summary,
        summary_through=row.summary_through,
        created_at=row.created_at,
    )


def message_record(row: MessageRow) -> Message:
    """The public form of a message row."""
    role: Literal["user", "assistant"] = "user" if row.role == "user" else "assistant"
    return Message(row.id, row.seq, row.session_id, row.run_id, role, row.content, row.created_at)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an agent named {name!r} already exists", param="name")


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """NewAgent field values as AgentRow column values."""
    columns = dict(values)
    if "memory" in columns:
        columns["memory"] = columns["memory"].as_json()
    if "approval" in columns:
        columns["approval"] = columns["approval"].as_json()
    if "tools" in columns:
        columns["tools"] = list(columns["tools"])
    if "mcp_servers" in columns:
        columns["mcp_servers"] = [use.as_json() for use in columns["mcp_servers"]]
    if "metadata" in columns:
        columns["metadata_"] = dict(columns.pop("metadata"))
    return columns


def create_agent(session: Session, tenant_id: uuid.UUID, new: NewAgent) -> Agent:
    """Insert an agent; Conflict when the tenant has one of that name."""
    values = {f.name: getattr(new, f.name) for f in dataclasses.fields(new)}
    mcp_store.check_names(session, tenant_id, [use.server for use in new.mcp_servers])
    row = AgentRow(id=uuid.uuid4(), tenant_id=tenant_id, **_columns(values))
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise _name_taken(new.name) from None
    session.refresh(row)
    return _agent(row)


def _agent_row(session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> AgentRow:
    row = session.scalar(
        select(AgentRow).where(AgentRow.id == agent_id, AgentRow.tenant_id == tenant_id)
    )
    if row is None:
        raise NotFound("agent", str(agent_id))
    return row


def hold_agent(session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> None:
    """Key-share lock the tenant's agent until the transaction ends, or NotFound: a row that
    references it (a session, a batch) can then be inserted, and a delete of the agent waits
    for the commit. Without the lock, a delete committing in between makes the insert a
    foreign-key violation (a 500) instead of NotFound."""
    held = session.scalar(
        select(AgentRow.id)
        .where(AgentRow.id == agent_id, AgentRow.tenant_id == tenant_id)
        .with_for_update(key_share=True)
    )
    if held is None:  # unknown, another tenant's, or deleted while this transaction waited
        raise NotFound("agent", str(agent_id))


def get_agent(session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Agent:
    """One agent, or NotFound."""
    return _agent(_agent_row(session, tenant_id, agent_id))


def list_agents(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Agent]:
    """Agents oldest first, `limit` of them after the (created_at, id) cursor."""
    query = select(AgentRow).where(AgentRow.tenant_id == tenant_id)
    if after is not None:
        query = query.where(
            (AgentRow.created_at > after[0])
            | ((AgentRow.created_at == after[0]) & (AgentRow.id > after[1]))
        )
    rows = session.scalars(query.order_by(AgentRow.created_at, AgentRow.id).limit(limit)).all()
    return [_agent(row) for row in rows]


def update_agent(
    session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID, changes: AgentChanges
) -> Agent:
    """Apply the fields `changes` sets; NotFound, or Conflict on a taken name."""
    row = _agent_row(session, tenant_id, agent_id)
    sent = changes.sent()
    if "mcp_servers" in sent:
        mcp_store.check_names(session, tenant_id, [use.server for use in sent["mcp_servers"]])
    for column, value in _columns(sent).items():
        setattr(row, column, value)
    row.updated_at = func.now()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _name_taken(str(sent.get("name"))) from None
    session.refresh(row)
    return _agent(row)


def delete_agent(session: Session, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> None:
    """Delete an agent with its sessions and runs; refused while one of its runs is active."""
    row = _agent_row(session, tenant_id, agent_id)
    session.execute(select(AgentRow.id).where(AgentRow.id == agent_id).with_for_update())
    active = session.scalar(
        select(func.count())
        .select_from(RunRow)
        .where(RunRow.agent_id == agent_id, RunRow.status.in_(ACTIVE_STATUSES))
    )
    if active:
        raise AgentBusy(f"agent {agent_id} has {active} active run(s); cancel them first")
    session.delete(row)


def create_session(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    *,
    user_id: str | None,
    metadata: Mapping[str, Any],
) -> ChatSession:
    """Start a conversation with an agent of this tenant. For an end user, under the user's
    erasure lock (shared): an erase of that user in progress finishes first, so the new
    session is never one of the erased (memory.erasure)."""
    hold_agent(session, tenant_id, agent_id)
    if user_id is not None:
        erasure.hold_shared(session, [erasure.user_lock(tenant_id, user_id)])
    row = SessionRow(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        agent_id=agent_id,
        user_id=user_id,
        metadata_=dict(metadata),
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return _session(row)


def get_session(session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ChatSession:
    """One session, or NotFound."""
    row = session.scalar(
        select(SessionRow).where(SessionRow.id == session_id, SessionRow.tenant_id == tenant_id)
    )
    if row is None:
        raise NotFound("session", str(session_id))
    return _session(row)


def list_sessions(
    session: Session,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    *,
    user_id: str | None = None,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[ChatSession]:
    """The agent's sessions (of one end user, with `user_id`) newest first, `limit` of them
    after the (created_at, id) cursor of the previous page; NotFound for an unknown agent."""
    _agent_row(session, tenant_id, agent_id)
    query = select(SessionRow).where(
        SessionRow.tenant_id == tenant_id, SessionRow.agent_id == agent_id
    )
    if user_id is not None:
        query = query.where(SessionRow.user_id == user_id)
    if before is not None:
        query = query.where(
            (SessionRow.created_at < before[0])
            | ((SessionRow.created_at == before[0]) & (SessionRow.id < before[1]))
        )
    order = (SessionRow.created_at.desc(), SessionRow.id.desc())
    rows = session.scalars(query.order_by(*order).limit(limit)).all()
    return [_session(row) for row in rows]


def lock_session(session: Session, tenant_id: uuid.UUID, session_id: uuid.UUID) -> ChatSession:
    """The session, row-locked until the transaction ends (serialises message creation)."""
    row = session.scalar(
        select(SessionRow)
        .where(SessionRow.id == session_id, SessionRow.tenant_id == tenant_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound("session", str(session_id))
    return _session(row)


def list_messages(
    session: Session,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    limit: int = 100,
    after_seq: int = 0,
) -> list[Message]:
    """Messages of a session oldest first, after a seq cursor."""
    get_session(session, tenant_id, session_id)
    rows = session.scalars(
        select(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.tenant_id == tenant_id,
            MessageRow.seq > after_seq,
        )
        .order_by(MessageRow.seq)
        .limit(limit)
    ).all()
    return [message_record(row) for row in rows]


def save_summary(session: Session, session_id: uuid.UUID, summary: str, through: int) -> None:
    """Keep a new summary, unless one covering more messages was saved meanwhile."""
    session.execute(
        update(SessionRow)
        .where(SessionRow.id == session_id, SessionRow.summary_through < through)
        .values(summary=summary, summary_through=through)
    )


def unsummarised_history(
    session: Session, session_id: uuid.UUID, run_created_at: datetime, after_seq: int
) -> list[Message]:
    """The messages of the session's earlier runs (those created before `run_created_at`)
    with seq > after_seq, oldest first: the history the summary does not cover yet. A run
    that was queued behind another sees that run's answer, although it was written later than
    its own message. Bounded in practice: each run folds its overflow into the summary."""
    earlier_runs = select(RunRow.id).where(
        RunRow.session_id == session_id, RunRow.created_at < run_created_at
    )
    rows = session.scalars(
        select(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.run_id.in_(earlier_runs),
            MessageRow.seq > after_seq,
        )
        .order_by(MessageRow.seq)
    ).all()
    return [message_record(row) for row in rows]
