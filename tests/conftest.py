"""Shared fixtures.

* Every test fails if it leaves asyncio tasks running (``no_leaked_tasks``).
* ``require_service`` skips a test whose server is absent, or fails it when
  ``VIGIL_REQUIRE_SERVICES=1`` (CI sets it), so a missing server cannot pass
  CI silently.
"""

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import pytest

POSTGRES_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) unless something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc})"
    if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running once its other fixtures are torn down."""
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
    for task in leaked:
        task.cancel()
    if leaked:
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail("test leaked asyncio tasks: " + ", ".join(sorted(t.get_name() for t in leaked)))
