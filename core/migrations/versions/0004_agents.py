"""Agents, sessions, messages, runs with their steps, tool calls and events.

A run is the unit the task queue executes. Its steps and tool calls are persisted before their
effects so a redelivered task resumes where a dead worker stopped; `run_events` is the ordered,
durable log the SSE endpoint replays.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def _tenant() -> sa.Column[object]:
    return sa.Column(
        "tenant_id",
        UUID(as_uuid=True),
        sa.ForeignKey("tenants.id", ondelete="CASCADE"),
        nullable=False,
    )


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True))
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=_now())


def _cascade(name: str, table: str) -> sa.Column[object]:
    return sa.Column(
        name, UUID(as_uuid=True), sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("instructions", sa.Text, nullable=False, server_default=""),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("tools", JSONB, nullable=False, server_default="[]"),
        sa.Column("memory", JSONB, nullable=False, server_default="{}"),
        sa.Column("max_steps", sa.Integer, nullable=False),
        sa.Column("tool_choice", sa.String(16), nullable=False, server_default="auto"),
        sa.Column("temperature", sa.Float),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        _time("created_at"),
        _time("updated_at"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_agents_tenant_name"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _tenant(),
        _cascade("agent_id", "agents"),
        sa.Column("user_id", sa.String(256)),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        # The model's summary of the messages up to and including `summary_through` (a seq).
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("summary_through", sa.BigInteger, nullable=False, server_default="0"),
        _time("created_at"),
    )
    op.create_index("ix_sessions_tenant_agent", "sessions", ["tenant_id", "agent_id"])
    op.create_table(
        "runs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _tenant(),
        _cascade("session_id", "sessions"),
        _cascade("agent_id", "agents"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text),
        sa.Column("stop_reason", sa.String(32)),
        sa.Column("error", JSONB),
        sa.Column("steps", sa.Integer, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("event_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("idempotency_key", sa.String(256)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        _time("created_at"),
        _time("enqueued_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
    )
    op.create_index("ix_runs_session_created", "runs", ["session_id", "created_at"])
    op.create_index(
        "uq_runs_tenant_idempotency_key",
        "runs",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    # What the sweeper scans: only unfinished runs are in this index.
    op.create_index(
        "ix_runs_active",
        "runs",
        ["status", "lease_expires_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_table(
        "messages",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True),
        _tenant(),
        _cascade("session_id", "sessions"),
        sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey("runs.id", ondelete="CASCADE")),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        _time("created_at"),
    )
    op.create_index("ix_messages_session_seq", "messages", ["session_id", "seq"])
    op.create_table(
        "run_steps",
        _cascade("run_id", "runs"),
        sa.Column("step", sa.Integer, nullable=False),
        _tenant(),
        sa.Column("context", JSONB, nullable=False),
        sa.Column("output", JSONB, nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("invalid_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("model_ms", sa.Float, nullable=False, server_default="0"),
        _time("created_at"),
        sa.PrimaryKeyConstraint("run_id", "step"),
    )
    op.create_table(
        "tool_calls",
        _cascade("run_id", "runs"),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("call_id", sa.String(128), nullable=False),
        _tenant(),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("is_error", sa.Boolean, nullable=False, server_default="false"),
        _time("created_at"),
        _time("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("run_id", "step", "call_id"),
    )
    op.create_table(
        "run_events",
        _cascade("run_id", "runs"),
        sa.Column("seq", sa.Integer, nullable=False),
        _tenant(),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )


def downgrade() -> None:
    for table in ("run_events", "tool_calls", "run_steps", "messages", "runs", "sessions"):
        op.drop_table(table)
    op.drop_table("agents")
