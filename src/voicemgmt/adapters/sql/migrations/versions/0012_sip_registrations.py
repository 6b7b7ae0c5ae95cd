"""Phones' SIP registrations, kept so that a restart keeps them reachable until they expire.

One row per registered device (its operator), removed with the device; rows past
``expires_at`` are purged by the SIP driver.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from voicemgmt.adapters.sql.tables import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_registrations",
        sa.Column(
            "operator_id",
            sa.Integer,
            sa.ForeignKey(
                "sip_devices.operator_id",
                ondelete="CASCADE",
                name="fk_sip_registrations_operator_id_sip_devices",
            ),
            nullable=False,
        ),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey(
                "accounts.id", ondelete="CASCADE", name="fk_sip_registrations_account_id_accounts"
            ),
            nullable=False,
        ),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("contact", sa.String(512), nullable=False),
        sa.Column("source_host", sa.String(64), nullable=False),
        sa.Column("source_port", sa.Integer, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("operator_id", name="pk_sip_registrations"),
        sa.UniqueConstraint("username", name="uq_sip_registrations_username"),
    )
    op.create_index("ix_sip_registrations_expires_at", "sip_registrations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sip_registrations_expires_at", table_name="sip_registrations")
    op.drop_table("sip_registrations")
