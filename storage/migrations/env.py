"""Alembic's environment for synthgate's schema: it runs on the connection storage/schema.py
passes (`config.attributes["connection"]`), inside that connection's transaction."""

from __future__ import annotations

from alembic import context

from synthgate.storage.tables import metadata

connection = context.config.attributes["connection"]
if (
    connection.dialect.name == "sqlite"
    and not connection.connection.driver_connection.in_transaction
):
    # pysqlite opens its transaction before DML alone, so each CREATE or DROP was committed at
    # once: a migration refused halfway (0010's downgrade, below 0011's) left the steps before
    # it done under the old revision stamp. SQLite's DDL is transactional once BEGIN is sent.
    connection.exec_driver_sql("BEGIN")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
