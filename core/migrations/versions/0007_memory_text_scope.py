"""Memory full text indexed with the search scope: one GIN over (scope keys, search_tsv).

A search filters on agent (and usually user). The GIN on `search_tsv` alone knew nothing of the
scope, so the full-text retriever fetched every row of the table that held a query word and
only then kept the user's: for a user with 1% of the table, 99% of that work was thrown away.
`memory_scope_keys(agent_id, user_id)` gives each row the keys `a:<agent>` and
`u:<agent>:<user>`; indexed in the same GIN as `search_tsv`, a search intersects a word's
postings with the user's inside the index and fetches only the user's rows. The new index
also serves queries on `search_tsv` alone, so it replaces `ix_memories_search_tsv`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IMMUTABLE: an index expression must be; the text of a uuid never changes.
    op.execute(
        "CREATE FUNCTION memory_scope_keys(agent uuid, user_id text) RETURNS text[] "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN ARRAY['a:' || agent::text, 'u:' || agent::text || ':' || user_id]"
    )
    op.execute(
        "CREATE INDEX ix_memories_scope_text ON memories "
        "USING gin (memory_scope_keys(agent_id, user_id), search_tsv)"
    )
    op.execute("DROP INDEX ix_memories_search_tsv")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_memories_search_tsv ON memories USING gin (search_tsv)")
    op.execute("DROP INDEX ix_memories_scope_text")
    op.execute("DROP FUNCTION memory_scope_keys(uuid, text)")
