"""Alembic environment for the Vigil store.

Migrations run only through :func:`vigil.store.sql.SqlStore.open`, which hands
over a connection already inside a transaction in
``config.attributes["connection"]``; there is no ``alembic.ini`` and no
offline (SQL script) mode. Python logging is left exactly as the application
configured it (no ``fileConfig``).
"""

from alembic import context

from vigil.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Vigil's migrations run from SqlStore.open(), which passes a connection")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
