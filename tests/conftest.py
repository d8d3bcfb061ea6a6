"""Shared fixtures.

* Every test fails if it leaves asyncio tasks running (``no_leaked_tasks``).
* ``support.require_service`` skips a test whose server is absent, or fails
  it when ``VIGIL_REQUIRE_SERVICES=1`` (CI sets it), so a missing server
  cannot pass CI silently.
* Every Vigil a test starts, in process or as a ``vigil serve`` child, has its
  heartbeat monitor on a free loopback UDP port rather than the default 8771,
  so tests never collide with each other or with a Vigil running here, and
  lets callbacks reach loopback, where the tests' receivers listen.
"""

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

os.environ.setdefault("VIGIL_MONITOR__LISTEN", "127.0.0.1:0")
# The tests' receivers listen on loopback, which the callback policy refuses unless allowed.
os.environ.setdefault("VIGIL_NOTIFIER__ALLOWED_CALLBACK_NETWORKS", '["127.0.0.0/8", "::1/128"]')


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
