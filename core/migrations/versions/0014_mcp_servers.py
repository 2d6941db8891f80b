"""MCP servers as tool sources (agents/mcp/).

- `mcp_servers`: a tenant's registered servers. `transport` is `http` (`url`) or `stdio`
  (`command`: the name of a deployer-allowed command, AGENTMILL_MCP_STDIO_SERVERS; a tenant never
  sends a command line). `headers` holds the HTTP headers sealed with the deployment's key
  (core/secrets.py); `header_names` lists their names, the only part the API shows. `tools`,
  `listed_at` and `last_error` are the last listing a worker made, shown by the API.
- `agents.mcp_servers` (jsonb): the servers an agent may use, `[{server, tools}]`, by name;
  `tools` null means every tool of the server.
- `agents.parallel_tool_calls`: whether the model may make several tool calls in one reply
  (OpenAI's `parallel_tool_calls`); null leaves it to the model's default.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "tenant_id",
            UUID(as_uuid=True),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("command", sa.String(64)),
        sa.Column("headers", sa.LargeBinary),
        sa.Column("header_names", JSONB, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("timeout_s", sa.Float),
        sa.Column("tools", JSONB),
        sa.Column("listed_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("tenant_id", "name", name="uq_mcp_servers_tenant_name"),
        sa.CheckConstraint("transport IN ('http', 'stdio')", name="ck_mcp_servers_transport"),
    )
    op.add_column(
        "agents",
        sa.Column("mcp_servers", JSONB, nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column("agents", sa.Column("parallel_tool_calls", sa.Boolean))


def downgrade() -> None:
    op.drop_column("agents", "parallel_tool_calls")
    op.drop_column("agents", "mcp_servers")
    op.drop_table("mcp_servers")
