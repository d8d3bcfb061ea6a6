"""The real OpenStack stack (``vigil testbed openstack``) for the tests that need it.

``openstack_stack`` (session scope) runs ``vigil testbed openstack up
--computes 3`` once per pytest run, through the CLI as a person would, and
``down`` at the end. A stack that is already up (a developer's, or one kept
from an earlier run) is reused and left up: it is not this run's to remove.
``VIGIL_OPENSTACK_KEEP=1`` keeps the run's own stack up too, so the next
run starts in a second instead of a minute. The stack lives in
``VIGIL_OPENSTACK_DIR`` (default ``/var/tmp/vigil-openstack``; its venv
survives ``down``).

Without MariaDB (127.0.0.1:3306) or RabbitMQ (127.0.0.1:5672) the tests
skip, or fail when ``VIGIL_REQUIRE_SERVICES=1`` (CI), like every test that
needs a server. Every test here is marked ``openstack``: ``-m "not
openstack"`` deselects them.
"""

import json
import os
from collections.abc import Iterator

import httpx
import pytest
from openstack_support import Stack, require_backing_services, vigil

from vigil.testbed.openstack.layout import default_base_dir


@pytest.fixture(scope="session")
def openstack_stack() -> Iterator[Stack]:
    require_backing_services()
    base = default_base_dir()
    result = vigil("testbed", "openstack", "up", "--computes", "3", "--base-dir", str(base), "--json")
    ours = True
    try:
        assert result.returncode == 0, f"up failed:\n{result.stdout}\n{result.stderr}"
        up = json.loads(result.stdout)
        ours = not up["already_up"]
        yield Stack(base, json.loads((base / "credentials.json").read_text()), up)
    finally:
        if ours and os.environ.get("VIGIL_OPENSTACK_KEEP") != "1":
            down = vigil("testbed", "openstack", "down", "--base-dir", str(base), timeout=300)
            assert down.returncode == 0, f"down failed:\n{down.stdout}\n{down.stderr}"


@pytest.fixture
def nova(openstack_stack: Stack) -> Iterator[httpx.Client]:
    """Nova's API as the stack's admin, with a Keystone token."""
    headers = {"X-Auth-Token": openstack_stack.token()}
    with httpx.Client(base_url=openstack_stack.credentials["endpoints"]["compute"], headers=headers, timeout=60) as c:
        yield c
