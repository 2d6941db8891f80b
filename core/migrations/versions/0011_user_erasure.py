"""Erasure tombstones: what was erased, so that writes begun before an erase cannot bring the
erased data back.

One row per erase: of an end user (`user_hash`; `agent_id` NULL for every agent of the tenant)
or of one session (`session_id`). The user id itself is not kept, only a SHA-256 of the
tenant id and the user id (memory.erasure.user_hash), so the tombstone of an erased user does
not hold the id it erased. memory.writer reads these rows before every write of a user's or a
session's memory, under an advisory lock the erase holds exclusively (memory.erasure).

Indexes for what an erase and the new session list look up: sessions by end user and by
(agent, created_at, id), batch items by end user.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("agent_id", UUID(as_uuid=True)),
        sa.Column("user_hash", sa.LargeBinary(32)),
        sa.Column("session_id", UUID(as_uuid=True)),
        sa.Column(
            "erased_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("clock_timestamp()"),
        ),
        sa.CheckConstraint(
            "(user_hash IS NULL) <> (session_id IS NULL)", name="ck_erasures_one_subject"
        ),
    )
    op.create_index(
        "ix_erasures_user",
        "erasures",
        ["tenant_id", "user_hash"],
        postgresql_where=sa.text("user_hash IS NOT NULL"),
    )
    op.create_index(
        "ix_erasures_session",
        "erasures",
        ["tenant_id", "session_id"],
        postgresql_where=sa.text("session_id IS NOT NULL"),
    )

    op.create_index(
        "ix_sessions_tenant_user",
        "sessions",
        ["tenant_id", "user_id"],
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.create_index(
        "ix_sessions_agent_created", "sessions", ["tenant_id", "agent_id", "created_at", "id"]
    )
    op.create_index(
        "ix_batch_items_tenant_user",
        "batch_items",
        ["tenant_id", "user_id"],
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_batch_items_tenant_user", table_name="batch_items")
    op.drop_index("ix_sessions_agent_created", table_name="sessions")
    op.drop_index("ix_sessions_tenant_user", table_name="sessions")
    op.drop_index("ix_erasures_session", table_name="erasures")
    op.drop_index("ix_erasures_user", table_name="erasures")
    op.drop_table("erasures")
