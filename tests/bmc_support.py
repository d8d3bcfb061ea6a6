"""Helpers of the fencing tests (import as ``from bmc_support import ...``): BMC emulators on loopback
(``vigil.testbed.bmc``: pyghmi's IPMI BMC, sushy-tools' Redfish) for two hosts, and the fence devices that reach
them through Debian's fence-agents."""

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vigil.fencing.agents import FenceDevice
from vigil.testbed.bmc import BmcConfig, BmcSpec, read_power

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


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Bmcs:
    """The running emulators: a spec per host, and where their power is kept."""

    config: BmcConfig
    by_host: dict[str, BmcSpec]

    def powered(self, host: str) -> bool:
        return read_power(self.config.state_dir, host)

    def ipmi(self, host: str, password: str = PASSWORD, timeout_s: float = 30.0) -> FenceDevice:
        spec = self.by_host[host]
        return FenceDevice(
            host=host,
            agent="fence_ipmilan",
            options={"ip": spec.address, "ipport": str(spec.ipmi_port), "username": USER, "lanplus": "1"},
            secrets={"password": password},
            timeout_s=timeout_s,
        )

    def redfish(self, host: str, password: str = PASSWORD, timeout_s: float = 30.0) -> FenceDevice:
        spec = self.by_host[host]
        return FenceDevice(
            host=host,
            agent="fence_redfish",
            options={
                "ip": spec.address,
                "ipport": str(spec.redfish_port),
                "username": USER,
                "ssl_insecure": "1",
                "systems_uri": f"/redfish/v1/Systems/{host}",
            },
            secrets={"password": password},
            timeout_s=timeout_s,
        )


@contextlib.contextmanager
def running_bmcs(tmp_path: Path) -> Iterator[Bmcs]:
    """The emulators for compute-1 and compute-2, in a process of their own, stopped on exit."""
    require_fence_agents()
    specs = [
        BmcSpec(host, "127.0.0.1", free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM))
        for host in ("compute-1", "compute-2")
    ]
    config = BmcConfig(state_dir=tmp_path / "bmc", username=USER, password=PASSWORD, bmcs=specs)
    config.state_dir.mkdir()
    config_file = tmp_path / "bmc.json"
    config.write(config_file)
    log = (tmp_path / "bmc.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil.testbed.bmc", str(config_file)], stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", f"the BMC emulators did not start: {(tmp_path / 'bmc.log').read_text()}"
        yield Bmcs(config, {s.host: s for s in specs})
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()
