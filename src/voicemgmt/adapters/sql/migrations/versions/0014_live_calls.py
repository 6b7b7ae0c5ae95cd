"""Live calls: each call's trace while it lives, and each serving node's heartbeat.

A call's trace is written with the routing step that changed it and deleted with its record,
so that a node killed mid-call leaves something to close the call with
(``services/live_calls.py``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from voicemgmt.adapters.sql.tables import UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_calls",
        sa.Column("id_call", sa.String(40), nullable=False),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey(
                "accounts.id", ondelete="CASCADE", name="fk_live_calls_account_id_accounts"
            ),
            nullable=False,
        ),
        sa.Column("node", sa.String(100), nullable=False),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id_call", name="pk_live_calls"),
    )
    op.create_index("ix_live_calls_node", "live_calls", ["node"])
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("seen_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_nodes"),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    op.drop_index("ix_live_calls_node", table_name="live_calls")
    op.drop_table("live_calls")
