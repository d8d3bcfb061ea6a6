"""Store fixtures: every store test runs on SQLite (a file in tmp_path) and on
PostgreSQL (a fresh database per test, dropped afterwards).
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import fresh_postgres_database

from vigil.store.sql import SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'vigil.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """An open store on an empty database, closed after the test."""
    async with SqlStore(store_url) as opened:
        yield opened
