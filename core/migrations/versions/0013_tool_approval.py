"""Human approval of tool calls (agents/runs/approvals.py).

- `agents.approval` (jsonb): the agent's ApprovalPolicy, `{tools, timeout_s}`; `{}` takes the
  defaults (no tool needs approval).
- `runs.action_expires_at`: when a run in `requires_action` stops waiting (its pending calls
  are then denied); `ix_runs_action_expires` finds those due, a handful of rows.
- `tool_calls.approval` (pending / approved / denied), `approval_message` (a denial's reason or
  an approval's note for the model), `parameters` (the tool's argument schema, kept while a
  call waits so the API checks an edit without loading the deployer's tools).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "agents", sa.Column("approval", JSONB, nullable=False, server_default=sa.text("'{}'"))
    )
    op.add_column("runs", sa.Column("action_expires_at", sa.DateTime(timezone=True)))
    op.add_column("tool_calls", sa.Column("approval", sa.String(16)))
    op.add_column("tool_calls", sa.Column("approval_message", sa.Text))
    op.add_column("tool_calls", sa.Column("parameters", JSONB))
    op.create_index(
        "ix_runs_action_expires",
        "runs",
        ["action_expires_at"],
        postgresql_where=sa.text("status = 'requires_action'"),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_action_expires", table_name="runs")
    op.drop_column("tool_calls", "parameters")
    op.drop_column("tool_calls", "approval_message")
    op.drop_column("tool_calls", "approval")
    op.drop_column("runs", "action_expires_at")
    op.drop_column("agents", "approval")
