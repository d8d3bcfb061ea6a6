"""The store adapter: the resource map, fault-management records and event log in SQLite or PostgreSQL.

:mod:`vigil.store.schema` holds the tables and the row ↔ dataclass mapping,
:mod:`vigil.store.sql` the :class:`SqlStore` (the controller's ``Store``
port), and ``migrations/`` the Alembic revisions it applies on open.
"""

from vigil.store.sql import SqlStore

__all__ = ["SqlStore"]
