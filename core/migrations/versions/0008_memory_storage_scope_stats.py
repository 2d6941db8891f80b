"""Memory vectors kept inline on their heap row; statistics of the search scopes.

pgvector's types default to EXTERNAL storage: once a row passes TOAST's 2 KB threshold (the two
half-precision vectors are 1.5 KB, the full-text vector and the neighbours' text often another
1.2 KB) Postgres moves its largest value out of line, and that was usually a vector: at 100,000
memories 91% of content vectors and 38% of context vectors lived in the TOAST table. Every
exact distance (a small user's search reads its rows, not the HNSW graph) and every distance
re-sorted after an HNSW scan then cost a TOAST index lookup and fetch: 1,900 of a small user's
2,500 buffer reads per scan. PLAIN keeps the vectors on the row; MAIN keeps `search_tsv` there
too (compressed if need be), which the full-text retriever scores; the neighbours' text
(`context`), which no search reads, is what leaves the row now. The storage of existing rows
changes only when they are rewritten, so the upgrade rewrites the table (with its indexes,
as migration 0005 did).

Two extended statistics (most-common-value lists) count the largest search scopes, per
(tenant, agent) and per (tenant, agent, user): memory.scope_indexes reads them to find the
scopes that deserve their own vector index, and the planner's row estimates for a scope filter
use them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_DIM = 384


def upgrade() -> None:
    # The USING expression is not a no-op cast, so Postgres rewrites every row (and rebuilds the
    # indexes) under the new storage; a same-type USING would leave old rows as they are.
    op.execute(
        "ALTER TABLE memories "
        "ALTER COLUMN embedding SET STORAGE PLAIN, "
        "ALTER COLUMN context_embedding SET STORAGE PLAIN, "
        "ALTER COLUMN search_tsv SET STORAGE MAIN, "
        f"ALTER COLUMN embedding TYPE halfvec({_DIM}) USING embedding::vector::halfvec({_DIM})"
    )
    op.execute("CREATE STATISTICS memories_scope_agents (mcv) ON tenant_id, agent_id FROM memories")
    op.execute(
        "CREATE STATISTICS memories_scope_users (mcv) ON tenant_id, agent_id, user_id FROM memories"
    )
    op.execute("ANALYZE memories")


def downgrade() -> None:
    op.execute("DROP STATISTICS memories_scope_users")
    op.execute("DROP STATISTICS memories_scope_agents")
    op.execute(
        "ALTER TABLE memories "
        "ALTER COLUMN embedding SET STORAGE EXTERNAL, "
        "ALTER COLUMN context_embedding SET STORAGE EXTERNAL, "
        "ALTER COLUMN search_tsv SET STORAGE EXTENDED"
    )
