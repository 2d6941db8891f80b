"""Batches: many inputs run by one agent, each item as its own run in its own session.

`batches` holds the settings and state of a batch; `batch_items` one row per input with the
outcome of its latest attempt. `runs.batch_id` tells the code that ends a run that an item's
outcome must be recorded in the same transaction.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0006"
down_revision = "0005"
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


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _tenant(),
        sa.Column(
            "agent_id",
            UUID(as_uuid=True),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False, server_default="running"),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'cancelled')", name="ck_batches_status"
        ),
        sa.CheckConstraint("concurrency BETWEEN 1 AND 64", name="ck_batches_concurrency"),
        sa.CheckConstraint("max_attempts >= 1", name="ck_batches_max_attempts"),
    )
    op.create_index("ix_batches_tenant_created", "batches", ["tenant_id", "created_at"])
    # What the sweeper scans: only unfinished batches are in this index.
    op.create_index(
        "ix_batches_running",
        "batches",
        ["created_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "batch_items",
        sa.Column(
            "batch_id",
            UUID(as_uuid=True),
            sa.ForeignKey("batches.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        _tenant(),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("user_id", sa.String(256)),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        # pending: waiting for a slot; queued: its run is queued or running; the rest are final.
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("output", sa.Text),
        sa.Column("error", JSONB),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float, nullable=False, server_default="0"),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("batch_id", "position"),
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'succeeded', 'failed', 'cancelled')",
            name="ck_batch_items_status",
        ),
    )
    op.create_index(
        "ix_batch_items_run",
        "batch_items",
        ["run_id"],
        unique=True,
        postgresql_where=sa.text("run_id IS NOT NULL"),
    )
    op.add_column(
        "runs",
        sa.Column("batch_id", UUID(as_uuid=True), sa.ForeignKey("batches.id", ondelete="SET NULL")),
    )
    op.create_index(
        "ix_runs_batch",
        "runs",
        ["batch_id"],
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_batch", table_name="runs")
    op.drop_column("runs", "batch_id")
    op.drop_table("batch_items")
    op.drop_table("batches")
