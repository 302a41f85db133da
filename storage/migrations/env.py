"""Alembic's environment for synthgate's schema: it runs on the connection storage/schema.py
passes (`config.attributes["connection"]`), inside that connection's transaction."""

from __future__ import annotations

from alembic import context

from synthgate.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
