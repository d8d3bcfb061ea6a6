"""A testbed host's power, as its BMC switches it (:mod:`vigil.testbed.bmc`).

Off is a power loss, not a shutdown: every process in the host's namespace
(its agent, its workload) is killed at once with SIGKILL, and its links go
down, so neither its heartbeats nor its service address answer again. On
brings the links up and starts the host's agent again, as a host boots;
its workload is not restarted (a real host's instances do not come back by
themselves either). A host Vigil fenced itself (``vigil testbed up
--fencing``) stays disabled in Vigil until an admin enables it; one
powered off by hand (``vigil fence off``) is declared lost by the heartbeat
monitor and UP again after its hold-down. A ``loss`` fault's nftables
table, in the host's namespace, outlives a power cycle (``vigil testbed
repair`` removes it).
"""

import contextlib
import os
import signal
import time
from pathlib import Path

from vigil.testbed import plan
from vigil.testbed.bmc import PowerHook
from vigil.testbed.netns import TestbedError, ip, netns_pids
from vigil.testbed.state import TestbedState, is_alive

KILL_WAIT_S = 5.0


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def power_off(state: TestbedState, host: plan.HostPlan) -> None:
    """Cut ``host``'s power: its processes killed, its links down."""
    killed = netns_pids(host.netns)
    _kill(killed)
    for dev in (plan.NS_MGMT_IF, plan.NS_DC_IF):
        ip("link", "set", "dev", dev, "down", ns=host.netns)
    deadline = time.monotonic() + KILL_WAIT_S
    while True:
        # A process forked while the others were killed is killed too. An agent this process started (power_on)
        # is its child: is_alive reaps it, so none is left a zombie here.
        left = netns_pids(host.netns)
        _kill(left)
        killed += left
        if not left and not any(is_alive(pid) for pid in killed):
            return
        if time.monotonic() > deadline:
            raise TestbedError(f"{host.name}'s processes outlived its power: {left or killed}")
        time.sleep(0.01)


def power_on(state: TestbedState, host: plan.HostPlan) -> None:
    """Give ``host`` its power back: links up, its agent started again."""
    from vigil.testbed.bed import start_agent  # bed starts the BMCs: imported here, not at module level

    for dev in (plan.NS_MGMT_IF, plan.NS_DC_IF):
        ip("link", "set", "dev", dev, "up", ns=host.netns)
    start_agent(state, host)


def host_power_hook(testbed_dir: Path) -> PowerHook:
    """What the testbed's BMCs do when they switch a host: :func:`power_off` or :func:`power_on`."""

    def switch(name: str, on: bool) -> None:
        state = TestbedState.load(testbed_dir)
        if state is None:
            raise TestbedError(f"no testbed state in {testbed_dir}")
        host = plan.host_by_name(state.hosts, name)
        (power_on if on else power_off)(state, host)

    return switch
