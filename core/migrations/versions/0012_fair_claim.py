"""Indexes for the fair claim (agents/fair_claim.py): a ticket picks the claimable run of the
tenant with the fewest running, then least recently started, runs.

- `ix_runs_tenant_active` (tenant_id, created_at) over unfinished runs: the skip scan over the
  tenants that have work, and each tenant's oldest claimable runs, in order.
- `ix_runs_tenant_running` (tenant_id, lease_expires_at) over running runs: a tenant's slots
  in use (a handful of rows, however long its queue).
- `ix_runs_tenant_started` (tenant_id, started_at): a tenant's latest start, one probe.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_tenant_active",
        "runs",
        ["tenant_id", "created_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_runs_tenant_running",
        "runs",
        ["tenant_id", "lease_expires_at"],
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index(
        "ix_runs_tenant_started",
        "runs",
        ["tenant_id", "started_at"],
        postgresql_where=sa.text("started_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_tenant_started", table_name="runs")
    op.drop_index("ix_runs_tenant_running", table_name="runs")
    op.drop_index("ix_runs_tenant_active", table_name="runs")
