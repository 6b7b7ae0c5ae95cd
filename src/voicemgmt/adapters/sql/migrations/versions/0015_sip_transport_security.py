"""SIP over TLS and SRTP: each phone's media encryption policy (required, optional, off).

Existing phones get ``optional``: SRTP when they offer it over TLS, plain RTP otherwise, which
is what they had.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_devices") as batch:
        batch.add_column(
            sa.Column("media_encryption", sa.String(8), nullable=False, server_default="optional")
        )


def downgrade() -> None:
    with op.batch_alter_table("sip_devices") as batch:
        batch.drop_column("media_encryption")
