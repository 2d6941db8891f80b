"""Record which embedding model the stored vectors came from: a JSON comment on
`memories.embedding` (the dimension is already the column type, `halfvec(384)`).

Every database so far was embedded with the bundled all-MiniLM-L6-v2; its identity is written
here as a literal (inference.embedder.model_identity of the bundled directory; migrations
import nothing above core, and tests/memory/test_model_record.py checks that the two agree).
memory.model_record reads the record; `agentmill memory reembed` rewrites it.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BUNDLED = "all-MiniLM-L6-v2@4b6fe92cb5d7"


def upgrade() -> None:
    op.execute(f"""COMMENT ON COLUMN memories.embedding IS '{{"model": "{BUNDLED}"}}'""")


def downgrade() -> None:
    op.execute("COMMENT ON COLUMN memories.embedding IS NULL")
