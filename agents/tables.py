"""Table models of the agents layer. The DDL lives in migrations 0004, 0006 (batches), 0009
(outage yields, lineage, started tool calls), 0013 (tool approval) and 0014 (MCP servers);
these mappings only describe the columns to SQLAlchemy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.models import Base


def _tenant() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class AgentRow(Base):
    """An agent spec, stored per tenant."""

    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    name: Mapped[str] = mapped_column(String(128))
    instructions: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(128))
    tools: Mapped[list[str]] = mapped_column(JSONB)
    memory: Mapped[dict[str, Any]] = mapped_column(JSONB)
    max_steps: Mapped[int]
    tool_choice: Mapped[str] = mapped_column(String(16), server_default="auto")
    approval: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    mcp_servers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    parallel_tool_calls: Mapped[bool | None]
    temperature: Mapped[float | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class McpServerRow(Base):
    """An MCP server a tenant registered as a tool source."""

    __tablename__ = "mcp_servers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    name: Mapped[str] = mapped_column(String(32))
    transport: Mapped[str] = mapped_column(String(8))
    url: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[bytes | None] = mapped_column(LargeBinary)
    header_names: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    timeout_s: Mapped[float | None]
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    listed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class SessionRow(Base):
    """A conversation between one end user and one agent."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(256))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    summary: Mapped[str] = mapped_column(Text, server_default="")
    summary_through: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = _created()


class RunRow(Base):
    """One execution of an agent on one user message."""

    __tablename__ = "runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    steps: Mapped[int] = mapped_column(server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(server_default="0")
    completion_tokens: Mapped[int] = mapped_column(server_default="0")
    cost_usd: Mapped[float] = mapped_column(server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(server_default="false")
    attempts: Mapped[int] = mapped_column(server_default="0")
    outage_yields: Mapped[int] = mapped_column(server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    event_seq: Mapped[int] = mapped_column(server_default="0")
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL")
    )
    previous_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL")
    )
    lineage_id: Mapped[uuid.UUID | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    created_at: Mapped[datetime] = _created()
    enqueued_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    action_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_url: Mapped[str | None] = mapped_column(Text)


class MessageRow(Base):
    """A user message or an agent's final answer in a session (tool traffic lives in steps)."""

    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    tenant_id: Mapped[uuid.UUID] = _tenant()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class StepRow(Base):
    """A model call of a run: what was sent, what came back, what was decided."""

    __tablename__ = "run_steps"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    output: Mapped[dict[str, Any]] = mapped_column(JSONB)
    decision: Mapped[str] = mapped_column(String(32))
    invalid_attempts: Mapped[int] = mapped_column(server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(server_default="0")
    completion_tokens: Mapped[int] = mapped_column(server_default="0")
    cost_usd: Mapped[float] = mapped_column(server_default="0")
    model_ms: Mapped[float] = mapped_column(server_default="0")
    created_at: Mapped[datetime] = _created()


class ToolCallRow(Base):
    """One tool call of a step; `started_at` is set (and committed) before its tool runs,
    `result` once, when the call has finished."""

    __tablename__ = "tool_calls"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(128))
    arguments: Mapped[str] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(server_default="false")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    starts: Mapped[int] = mapped_column(server_default="0")
    approval: Mapped[str | None] = mapped_column(String(16))
    approval_message: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """One entry of a run's ordered, durable event log."""

    __tablename__ = "run_events"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()


class BatchRow(Base):
    """Many inputs for one agent, run at most `concurrency` at a time."""

    __tablename__ = "batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    concurrency: Mapped[int]
    max_attempts: Mapped[int]
    cancel_requested: Mapped[bool] = mapped_column(server_default="false")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    webhook_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BatchItemRow(Base):
    """One input of a batch with the outcome of its latest attempt (usage sums all attempts)."""

    __tablename__ = "batch_items"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = _tenant()
    input: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(256))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default="0")
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    prompt_tokens: Mapped[int] = mapped_column(server_default="0")
    completion_tokens: Mapped[int] = mapped_column(server_default="0")
    cost_usd: Mapped[float] = mapped_column(server_default="0")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
