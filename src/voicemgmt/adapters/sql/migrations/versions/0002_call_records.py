"""Call records (CDRs) and each operator's last chosen presence.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from voicemgmt.adapters.sql.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_DURATIONS = (
    "duration",
    "duration_ring",
    "duration_svi",
    "duration_wait",
    "duration_comm",
    "duration_hold",
)


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("id_call", sa.String(40), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("service_number", sa.String(64), nullable=False),
        sa.Column("id_group", sa.Integer, nullable=True),
        sa.Column("id_op", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ended_by", sa.String(16), nullable=False),
        sa.Column("disconnect_reason", sa.String(64), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime, nullable=False),
        *(sa.Column(name, sa.Float, nullable=False) for name in _DURATIONS),
        sa.Column("operators_offered", sa.JSON, nullable=False),
        sa.Column("overflowed_from", sa.JSON, nullable=False),
        sa.Column("ticket_id", sa.String(255), nullable=True),
        sa.Column("variables", sa.JSON, nullable=False),
    )
    op.create_index("ix_call_records_account_started", "call_records", ["account_id", "started_at"])
    op.create_index(
        "ix_call_records_account_op", "call_records", ["account_id", "id_op", "started_at"]
    )
    op.create_index(
        "ix_call_records_account_group", "call_records", ["account_id", "id_group", "started_at"]
    )
    op.create_table(
        "operator_presence",
        sa.Column(
            "operator_id",
            sa.Integer,
            sa.ForeignKey("operators.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("presence", sa.String(8), nullable=False),
        sa.Column("since", UtcDateTime, nullable=False),
    )
    op.create_index("ix_operator_presence_account_id", "operator_presence", ["account_id"])


def downgrade() -> None:
    op.drop_table("operator_presence")
    op.drop_table("call_records")
