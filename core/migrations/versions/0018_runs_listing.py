"""The index of a tenant's runs newest first (`GET /v1/runs`, the dashboard's runs page).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_tenant_created",
        "runs",
        ["tenant_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_runs_tenant_created", table_name="runs")
