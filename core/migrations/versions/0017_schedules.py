"""Schedules (agents/schedules/), batch and schedule webhook events, per-request webhooks.

- `schedules`: an agent, when (`cron` with a `timezone`, or `interval_s` from `anchor_at`),
  the input each fire sends, the end user, the session policy (`session_mode` `new`: a fresh
  session per fire; `fixed`: every fire in `session_id`), what happens to fires missed while
  nothing ran (`missed`: `run_once` or `skip`), `enabled`, and `next_fire_at`, the one the
  workers' scheduler looks for (`ix_schedules_due`, enabled only).
- `schedule_fires`: one row per (schedule, fire time), the primary key: a fire time can never
  become two runs, whichever worker fires it and however often it is retried.
- `webhook_deliveries`: `run_id` may be null (a `batch.completed` event has no run), a
  `batch_id` ties such a delivery to its batch (erased with it); `webhook_id` may be null for a
  per-request webhook (`url` holds the address, signed with the tenant's request signing key);
  one of the two is always set, and an event becomes at most one per-request delivery.
- `runs.webhook_url`, `batches.webhook_url`: the per-request webhook of a message or a batch.
- `webhook_signing_keys`: per tenant, the sealed secret that signs per-request deliveries.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _tenant(primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        "tenant_id",
        UUID(as_uuid=True),
        sa.ForeignKey("tenants.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _tenant(),
        sa.Column(
            "agent_id",
            UUID(as_uuid=True),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("cron", sa.String(120)),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("interval_s", sa.Integer),
        sa.Column("anchor_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("user_id", sa.String(256)),
        sa.Column("session_mode", sa.String(8), nullable=False, server_default="new"),
        sa.Column(
            "session_id", UUID(as_uuid=True), sa.ForeignKey("sessions.id", ondelete="SET NULL")
        ),
        sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
        sa.Column("missed", sa.String(16), nullable=False, server_default="run_once"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("next_fire_at", sa.DateTime(timezone=True)),
        sa.Column("last_fire_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("fires", sa.Integer, nullable=False, server_default="0"),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint("(cron IS NULL) <> (interval_s IS NULL)", name="ck_schedules_when"),
        sa.CheckConstraint("session_mode IN ('new', 'fixed')", name="ck_schedules_session"),
        sa.CheckConstraint("missed IN ('run_once', 'skip')", name="ck_schedules_missed"),
    )
    op.create_index("ix_schedules_tenant", "schedules", ["tenant_id", "created_at", "id"])
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_fire_at"],
        postgresql_where=sa.text("enabled AND next_fire_at IS NOT NULL"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column(
            "schedule_id",
            UUID(as_uuid=True),
            sa.ForeignKey("schedules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("fire_at", sa.DateTime(timezone=True), primary_key=True),
        _tenant(),
        sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
        _at("created_at"),
    )
    op.create_index("ix_schedule_fires_run", "schedule_fires", ["run_id"])

    op.add_column("runs", sa.Column("webhook_url", sa.Text))
    op.add_column("batches", sa.Column("webhook_url", sa.Text))
    op.alter_column("webhook_deliveries", "run_id", nullable=True)
    op.alter_column("webhook_deliveries", "webhook_id", nullable=True)
    op.add_column(
        "webhook_deliveries",
        sa.Column("batch_id", UUID(as_uuid=True), sa.ForeignKey("batches.id", ondelete="CASCADE")),
    )
    op.add_column("webhook_deliveries", sa.Column("url", sa.Text))
    op.create_check_constraint(
        "ck_webhook_deliveries_target",
        "webhook_deliveries",
        "(webhook_id IS NULL) <> (url IS NULL)",
    )
    op.create_index(
        "uq_webhook_deliveries_request_event",
        "webhook_deliveries",
        ["event_id"],
        unique=True,
        postgresql_where=sa.text("webhook_id IS NULL"),
    )
    op.create_index("ix_webhook_deliveries_batch", "webhook_deliveries", ["batch_id"])
    op.create_table(
        "webhook_signing_keys",
        _tenant(primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        _at("created_at"),
    )


def downgrade() -> None:
    op.drop_table("webhook_signing_keys")
    op.execute("DELETE FROM webhook_deliveries WHERE webhook_id IS NULL OR run_id IS NULL")
    op.drop_index("ix_webhook_deliveries_batch", "webhook_deliveries")
    op.drop_index("uq_webhook_deliveries_request_event", "webhook_deliveries")
    op.drop_constraint("ck_webhook_deliveries_target", "webhook_deliveries")
    op.drop_column("webhook_deliveries", "url")
    op.drop_column("webhook_deliveries", "batch_id")
    op.alter_column("webhook_deliveries", "webhook_id", nullable=False)
    op.alter_column("webhook_deliveries", "run_id", nullable=False)
    op.drop_column("batches", "webhook_url")
    op.drop_column("runs", "webhook_url")
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
