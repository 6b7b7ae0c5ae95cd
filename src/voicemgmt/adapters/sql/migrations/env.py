"""Alembic environment: always run on a connection handed in by ``migrate()``."""

from __future__ import annotations

from alembic import context

from voicemgmt.adapters.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through voicemgmt (voicemgmt db upgrade), not alembic")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
