"""Testbeds for the tests: real namespaces, so root is needed (CI runs as root).

Each module that needs a running testbed shares one (``testbed``, module
scope) in a scratch state directory, and takes it down at the end. A
testbed already up on the machine (names ``vgt-*``) is somebody's: the
tests fail rather than remove it.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.testbed import bed
from vigil.testbed.state import TestbedState


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the testbed creates network namespaces, veths, bridges and nftables rules")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            pytest.fail(f"'{tool}' is missing: make test installs it (apt-get install -y iproute2 nftables)")


def require_fence_agents() -> None:
    """Skip (or, under VIGIL_REQUIRE_SERVICES=1, fail) without Debian's fence-agents and ipmitool, which the
    tests that fence a testbed host run (``make sysdeps`` installs them as root)."""
    wanted = ("/usr/sbin/fence_ipmilan", "/usr/sbin/fence_redfish", "/usr/bin/ipmitool")
    missing = [p for p in wanted if not os.access(p, os.X_OK)]
    if not missing:
        return
    reason = f"needs {', '.join(missing)} (make sysdeps installs fence-agents and ipmitool as root)"
    if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
    pytest.skip(reason)


def require_nothing_up() -> None:
    left = {k: v for k, v in bed.leftovers().items() if v}
    if left:
        pytest.fail(f"a testbed (or its leftovers) is on this machine: {left}; run 'vigil testbed down'")


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestbedState]:
    """A testbed of 2 hosts, shared by the module's tests."""
    require_root()
    require_nothing_up()
    state_dir = tmp_path_factory.mktemp("testbed") / "state"
    state = bed.up(2, state_dir)
    try:
        yield state
    finally:
        bed.down(state_dir)


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A scratch state directory for a test that brings its own testbed up; down at the end whatever happened."""
    require_root()
    require_nothing_up()
    directory = tmp_path / "state"
    yield directory
    bed.down(directory)
