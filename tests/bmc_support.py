"""Helpers of the fencing tests (import as ``from bmc_support import ...``): BMC emulators on loopback
(``vigil.testbed.bmc``: pyghmi's IPMI BMC, sushy-tools' Redfish) for two hosts, and the fence devices that reach
them through Debian's fence-agents."""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vigil.fencing.agents import FenceDevice
from vigil.testbed.bmc import BmcConfig, BmcSpec, device_settings, loopback_bmcs, read_power

AGENTS = [Path("/usr/sbin"), Path("/usr/bin")]
USER, PASSWORD = "admin", "bmc-Secret-42"


def require_fence_agents() -> None:
    """Skip (or, in CI, fail) without fence-agents and ipmitool (``make sysdeps`` installs them as root)."""
    missing = [
        p
        for p in ("/usr/sbin/fence_ipmilan", "/usr/sbin/fence_redfish", "/usr/bin/ipmitool")
        if not os.access(p, os.X_OK)
    ]
    if not missing:
        return
    reason = f"needs {', '.join(missing)} (make sysdeps installs fence-agents and ipmitool as root)"
    if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
    pytest.skip(reason)


@dataclass(frozen=True)
class Bmcs:
    """The running emulators: a spec per host, and where their power is kept."""

    config: BmcConfig
    by_host: dict[str, BmcSpec]

    def powered(self, host: str) -> bool:
        return read_power(self.config.state_dir, host)

    def ipmi(self, host: str, password: str = PASSWORD, timeout_s: float = 30.0) -> FenceDevice:
        return self._device(host, "fence_ipmilan", password, timeout_s)

    def redfish(self, host: str, password: str = PASSWORD, timeout_s: float = 30.0) -> FenceDevice:
        return self._device(host, "fence_redfish", password, timeout_s)

    def _device(self, host: str, agent: str, password: str, timeout_s: float) -> FenceDevice:
        made = device_settings(self.by_host[host], agent, USER)
        options: dict[str, str] = made["options"]  # type: ignore[assignment]
        return FenceDevice(host, agent, options, secrets={"password": password}, timeout_s=timeout_s)


@contextlib.contextmanager
def running_bmcs(tmp_path: Path) -> Iterator[Bmcs]:
    """The emulators for compute-1 and compute-2, in a process of their own, stopped on exit."""
    require_fence_agents()
    with loopback_bmcs(tmp_path, ["compute-1", "compute-2"], USER, PASSWORD) as config:
        yield Bmcs(config, {s.host: s for s in config.bmcs})
