"""Webhooks: subscriptions, per-account settings and stream position, the outbox, attempts.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from voicemgmt.adapters.sql.tables import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _account_fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey("accounts.id", ondelete="CASCADE", name=f"fk_{table}_account_id_accounts")


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, _account_fk("webhook_subscriptions"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("event_kinds", sa.JSON, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.String(32), nullable=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("previous_secret", sa.LargeBinary, nullable=True),
        sa.Column("previous_secret_expires_at", UtcDateTime, nullable=True),
        sa.Column("failing_since", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscriptions"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_subscriptions_account_id", "webhook_subscriptions", ["account_id"])
    op.create_table(
        "webhook_accounts",
        sa.Column("account_id", sa.Integer, _account_fk("webhook_accounts"), primary_key=True),
        sa.Column("allow_private_targets", sa.Boolean, nullable=False),
        sa.Column("stream_epoch", sa.Integer, nullable=False),
        sa.Column("stream_seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_webhook_accounts"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey(
                "webhook_subscriptions.id",
                ondelete="CASCADE",
                name="fk_webhook_deliveries_subscription_id_webhook_subscriptions",
            ),
            nullable=False,
        ),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("stream_epoch", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event_kind", sa.String(64), nullable=False),
        sa.Column("order_key", sa.String(64), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("delivery_id", name="uq_webhook_deliveries_delivery_id"),
        sa.UniqueConstraint(
            "subscription_id", "stream_epoch", "seq", name="uq_webhook_deliveries_event"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_webhook_deliveries_state_next_attempt_at",
        "webhook_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_order",
        "webhook_deliveries",
        ["subscription_id", "order_key", "id"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "delivery_row",
            sa.Integer,
            sa.ForeignKey(
                "webhook_deliveries.id",
                ondelete="CASCADE",
                name="fk_webhook_attempts_delivery_row_webhook_deliveries",
            ),
            nullable=False,
        ),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("response_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_attempts_delivery_row", "webhook_attempts", ["delivery_row"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_accounts")
    op.drop_table("webhook_subscriptions")
