"""The platform API (SPEC §6): a number's state and recording flag, a call's wrap-up time.

``numbers.state`` is ``active`` or ``suspended`` (a suspended number takes no calls);
``numbers.record`` is the recording flag, stored for the recordings feature to read.
``call_records.post_appel`` is the wrap-up the call's operator was given after it, in seconds;
records written before this revision read 0.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("numbers") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("record", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("post_appel", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("post_appel")
    with op.batch_alter_table("numbers") as batch:
        batch.drop_column("record")
        batch.drop_column("state")
