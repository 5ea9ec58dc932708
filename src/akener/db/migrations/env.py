"""Alembic environment: always run with a connection handed in by akener.db.migrate."""

from __future__ import annotations

from alembic import context

from akener.db.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with 'akener db upgrade'")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
