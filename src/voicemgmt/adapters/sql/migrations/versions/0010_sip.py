"""Operators' SIP devices: digest HA1 per realm (never a password) or a static contact.

Revision ID: 0010
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from voicemgmt.adapters.sql.tables import UtcDateTime

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_devices",
        sa.Column(
            "operator_id",
            sa.Integer,
            sa.ForeignKey(
                "operators.id",
                ondelete="CASCADE",
                name="fk_sip_devices_operator_id_operators",
            ),
            primary_key=True,
        ),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey(
                "accounts.id", ondelete="CASCADE", name="fk_sip_devices_account_id_accounts"
            ),
            nullable=False,
        ),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("realm", sa.String(128), nullable=False),
        sa.Column("ha1_md5", sa.String(32), nullable=True),
        sa.Column("ha1_sha256", sa.String(64), nullable=True),
        sa.Column("contact", sa.String(512), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("operator_id", name="pk_sip_devices"),
        sa.UniqueConstraint("username", name="uq_sip_devices_username"),
    )
    op.create_index("ix_sip_devices_account_id", "sip_devices", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_sip_devices_account_id", table_name="sip_devices")
    op.drop_table("sip_devices")
