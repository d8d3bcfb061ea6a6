"""Databases for the benchmarks: SQLite in the scratch directory, or a fresh PostgreSQL database (dropped after)."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from vigil.store.sql import async_url

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@asynccontextmanager
async def database(kind: str, server: str) -> AsyncIterator[str | None]:
    """None for SQLite (the data directory's file); a fresh PostgreSQL database's URL otherwise."""
    if kind == "sqlite":
        yield None
        return
    name = f"vigil_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(async_url(server)).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
