"""Store fixtures: every store test runs on SQLite (a file in tmp_path) and on
PostgreSQL (a fresh database per test, dropped afterwards).
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from support import POSTGRES_URL, require_service

from vigil.store.sql import SqlStore, async_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'vigil.db'}"
        return
    server = async_url(POSTGRES_URL)
    require_service("PostgreSQL", server.host or "127.0.0.1", server.port or 5432)
    name = f"vigil_test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """An open store on an empty database, closed after the test."""
    async with SqlStore(store_url) as opened:
        yield opened
