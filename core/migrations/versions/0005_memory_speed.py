"""Memory vectors as half precision (halfvec): half the table and HNSW index pages.

All-MiniLM-L6-v2's unit vectors lose nothing measurable at 16 bits (LoCoMo recall@10 and HNSW
recall unchanged, docs/benchmarks.md), while each memory's two vectors shrink from 3 KB to
1.5 KB, so a row fits on its heap page without TOAST and twice as many index tuples fit in
shared buffers. Rewrites `memories` and rebuilds both HNSW indexes.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_DIM = 384
_INDEXES = (
    ("ix_memories_embedding", "embedding"),
    ("ix_memories_context_embedding", "context_embedding"),
)


def _convert(kind: str, ops: str) -> None:
    for name, _ in _INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute(
        "ALTER TABLE memories "
        f"ALTER COLUMN embedding TYPE {kind}({_DIM}) USING embedding::{kind}({_DIM}), "
        f"ALTER COLUMN context_embedding TYPE {kind}({_DIM}) "
        f"USING context_embedding::{kind}({_DIM})"
    )
    for name, column in _INDEXES:
        op.execute(
            f"CREATE INDEX {name} ON memories "
            f"USING hnsw ({column} {ops}) WITH (m = 16, ef_construction = 64)"
        )


def upgrade() -> None:
    _convert("halfvec", "halfvec_cosine_ops")


def downgrade() -> None:
    _convert("vector", "vector_cosine_ops")
