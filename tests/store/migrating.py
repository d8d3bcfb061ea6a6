"""Helpers of the migration tests: a database left at an old revision, and where a store ended."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from vigil.store.schema import metadata
from vigil.store.sql import SqlStore, async_url, migrations_config


@contextlib.asynccontextmanager
async def at_revision(store_url: str, revision: str) -> AsyncIterator[AsyncConnection]:
    """A connection, in a transaction, to the database migrated up to ``revision`` only."""
    url = async_url(store_url)
    if url.get_backend_name() == "sqlite":
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)

    def upgrade(conn: Connection) -> None:
        command.upgrade(migrations_config(conn), revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade)
            yield conn
    finally:
        await engine.dispose()


async def revision_and_diff(store: SqlStore) -> tuple[str | None, list[Any]]:
    """The store's schema revision, and how its tables differ from vigil/store/schema.py."""

    def read(conn: Connection) -> tuple[str | None, list[Any]]:
        context = MigrationContext.configure(conn)
        return context.get_current_revision(), compare_metadata(context, metadata)

    async with store.engine.connect() as conn:
        return await conn.run_sync(read)
