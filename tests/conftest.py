"""Shared fixtures.

* Every test fails if it leaves asyncio tasks running (``no_leaked_tasks``).
* ``support.require_service`` skips a test whose server is absent, or fails
  it when ``VIGIL_REQUIRE_SERVICES=1`` (CI sets it), so a missing server
  cannot pass CI silently.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest


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
