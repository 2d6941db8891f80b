"""Runs that ride out outages and tool effects that happen once.

- `runs.outage_yields`: attempts that handed the run back on purpose because the model server
  or the database stayed unavailable past the retry budget; the poison limit
  (`run_max_attempts`) counts only the other attempts, the ones that vanished (a crash).
- `runs.previous_run_id`, `runs.lineage_id`: a batch item's retry continues its failed
  predecessor (its steps and tool results are copied in), and every run of that chain shares
  the first run's id as the root of its tools' idempotency keys. NULL lineage: the run is its
  own root.
- `tool_calls.started_at`, `tool_calls.starts`: a call is marked started, and committed, before
  its tool runs, so a resumed run knows that a call without a result may have taken effect.
- `memory_block_versions.edit_key`: the idempotency key of the tool call that wrote a version;
  an edit that comes back with a key the block already holds changes nothing.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("outage_yields", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column(
        "runs",
        sa.Column(
            "previous_run_id",
            UUID(as_uuid=True),
            sa.ForeignKey("runs.id", ondelete="SET NULL"),
        ),
    )
    op.add_column("runs", sa.Column("lineage_id", UUID(as_uuid=True)))
    op.add_column("tool_calls", sa.Column("started_at", sa.DateTime(timezone=True)))
    op.add_column("tool_calls", sa.Column("starts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("memory_block_versions", sa.Column("edit_key", sa.Text))
    op.create_index(
        "uq_memory_block_versions_edit_key",
        "memory_block_versions",
        ["block_id", "edit_key"],
        unique=True,
        postgresql_where=sa.text("edit_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_memory_block_versions_edit_key", table_name="memory_block_versions")
    op.drop_column("memory_block_versions", "edit_key")
    op.drop_column("tool_calls", "starts")
    op.drop_column("tool_calls", "started_at")
    op.drop_column("runs", "lineage_id")
    op.drop_column("runs", "previous_run_id")
    op.drop_column("runs", "outage_yields")
