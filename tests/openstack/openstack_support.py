"""Helpers of the OpenStack stack tests (importable as ``openstack_support``: pytest puts this folder on the path)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import require_service

from vigil.testbed.openstack.layout import Layout

UP_TIMEOUT_S = 900  # a cold pip install (~45 s) plus migrations and start-up, with a wide margin


def api(microversion: str) -> dict[str, str]:
    """The header that asks Nova for a microversion."""
    return {"OpenStack-API-Version": f"compute {microversion}"}


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true (returned), or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def wait_active(nova: httpx.Client, server: str) -> None:
    wait_for(lambda: nova.get(f"/servers/{server}").json()["server"]["status"] == "ACTIVE", f"{server} ACTIVE")


def vigil(*args: str, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run the ``vigil`` CLI of this checkout in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass(frozen=True)
class Stack:
    base: Path
    credentials: dict[str, Any]
    up_result: dict[str, Any]

    @property
    def layout(self) -> Layout:
        return Layout(self.base)

    def token(self) -> str:
        c = self.credentials
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": c["username"],
                            "domain": {"name": c["user_domain_name"]},
                            "password": c["password"],
                        }
                    },
                },
                "scope": {"project": {"name": c["project_name"], "domain": {"name": c["project_domain_name"]}}},
            }
        }
        response = httpx.post(f"{c['auth_url']}/auth/tokens", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]


def wait_dead(pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, f"{pid} did not die"
        time.sleep(0.1)


def restart_forced_down_compute(stack: Stack, nova: httpx.Client, host: str) -> None:
    """Kill an evacuated host's compute, start it again and force it up.

    Nova refuses ``forced_down: false`` while ``done`` evacuation records
    remain, and only a restarted compute clears them; ``up`` in turn waits for
    the hypervisor to be up, which a forced-down one is not, so the force-up
    is retried while ``up`` runs.
    """
    found = nova.get("/os-services", params={"binary": "nova-compute", "host": host}, headers=api("2.53"))
    service = found.json()["services"][0]["id"]
    pid = int((stack.base / "pids" / f"nova-compute-{host.rsplit('-', 1)[1]}.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_dead(pid)
    up = subprocess.Popen(
        [sys.executable, "-m", "vigil", "testbed", "openstack", "up", "--computes", "3", "--base-dir", str(stack.base)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                nova.put(f"/os-services/{service}", json={"forced_down": False}, headers=api("2.53")).status_code == 200
            ),
            f"{host} forced up after its restart",
            timeout_s=240,
        )
        _, err = up.communicate(timeout=UP_TIMEOUT_S)
        assert up.returncode == 0, err[-2000:]
    finally:
        if up.poll() is None:
            up.kill()


def require_backing_services() -> None:
    require_service("MariaDB", "127.0.0.1", 3306)
    require_service("RabbitMQ", "127.0.0.1", 5672)
    for tool in ("mysql", "rabbitmqctl"):
        if shutil.which(tool) is None:
            reason = f"'{tool}' is not installed (it comes with the server)"
            if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
            pytest.skip(reason)
