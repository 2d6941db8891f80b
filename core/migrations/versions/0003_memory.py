"""Long-term memory: memories (pgvector + full text), core memory blocks and their history.

`agent_id`, `session_id` and the provenance ids are plain columns without foreign keys: the
agents, sessions and runs tables arrive later (issue 5), which may add the keys.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# all-MiniLM-L6-v2, the bundled embedder. A model of another size needs a new migration.
_DIM = 384


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        # Insertion order: which turns of a session are neighbours, whatever their timestamps.
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("agent_id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.String(256)),
        sa.Column("session_id", UUID(as_uuid=True)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        # Text around the memory (neighbouring turns, date) used for retrieval only.
        sa.Column("context", sa.Text, nullable=False, server_default=""),
        sa.Column("embedding", Vector(_DIM), nullable=False),
        sa.Column("context_embedding", Vector(_DIM), nullable=False),
        # The memory itself weighs A, its context D: ts_rank_cd weights them apart.
        sa.Column(
            "search_tsv",
            TSVECTOR,
            sa.Computed(
                "setweight(to_tsvector('english'::regconfig, content), 'A') || "
                "setweight(to_tsvector('english'::regconfig, context), 'D')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("importance", sa.Float, nullable=False, server_default="0.5"),
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("source_run_id", UUID(as_uuid=True)),
        sa.Column("source_message_id", UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("last_accessed_at", sa.DateTime(timezone=True)),
        sa.Column("access_count", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("kind IN ('episodic', 'fact', 'summary')", name="ck_memories_kind"),
        sa.CheckConstraint("importance >= 0 AND importance <= 1", name="ck_memories_importance"),
    )
    op.create_index(
        "ix_memories_scope", "memories", ["tenant_id", "agent_id", "user_id", "created_at"]
    )
    op.create_index("ix_memories_tenant_user", "memories", ["tenant_id", "user_id"])
    op.create_index("ix_memories_session", "memories", ["tenant_id", "session_id", "seq"])
    op.execute(
        "CREATE INDEX ix_memories_embedding ON memories "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    op.execute(
        "CREATE INDEX ix_memories_context_embedding ON memories "
        "USING hnsw (context_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    op.execute("CREATE INDEX ix_memories_search_tsv ON memories USING gin (search_tsv)")
    op.execute("CREATE INDEX ix_memories_metadata ON memories USING gin (metadata jsonb_path_ops)")

    op.create_table(
        "memory_blocks",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("agent_id", UUID(as_uuid=True), nullable=False),
        # '' means the agent's own block; a user id makes a per-user block (e.g. `human`).
        sa.Column("user_id", sa.String(256), nullable=False, server_default=""),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("char_limit", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.UniqueConstraint("tenant_id", "agent_id", "user_id", "label", name="uq_memory_blocks"),
        sa.CheckConstraint("char_length(value) <= char_limit", name="ck_memory_blocks_limit"),
    )
    op.create_table(
        "memory_block_versions",
        sa.Column(
            "block_id",
            UUID(as_uuid=True),
            sa.ForeignKey("memory_blocks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("char_limit", sa.Integer, nullable=False),
        # Who wrote this version: "api", "agent", "system", ... (free text, for the history).
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
