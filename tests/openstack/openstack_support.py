"""Helpers of the OpenStack stack tests (importable as ``openstack_support``: pytest puts this folder on the path)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import require_service

from vigil.testbed.openstack.glance import IMAGE_ID
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


@dataclass
class Scene:
    """What a test makes in Nova and Neutron as the stack's admin: a flavor, a network with a subnet, perhaps an
    anti-affinity group, and the servers it boots; :func:`scene` undoes all of it."""

    stack: Stack
    nova: httpx.Client
    neutron: httpx.Client
    tag: str
    flavor: str = ""
    network: str = ""
    group: str | None = None
    servers: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # what a fixture made on top, by name

    def boot(self, name: str, host: str, *, role: str | None = None, grouped: bool = False) -> str:
        """A server booted through Nova on ``host`` (2.74) with a port on the network, in the group if
        ``grouped``, its ``role`` in its metadata; not waited for."""
        server: dict[str, Any] = {
            "name": name,
            "imageRef": IMAGE_ID,
            "flavorRef": self.flavor,
            "networks": [{"uuid": self.network}],
            "host": host,
        }
        if role is not None:
            server["metadata"] = {"role": role}
        body: dict[str, Any] = {"server": server}
        if grouped:
            body["os:scheduler_hints"] = {"group": self.group}
        answer = self.nova.post("/servers", json=body, headers=api("2.74"))
        assert answer.status_code == 202, answer.text
        ident = str(answer.json()["server"]["id"])
        self.servers.append(ident)
        return ident

    def service(self, host: str) -> dict[str, Any]:
        """The compute service of ``host``, as Nova shows it at 2.53."""
        found = self.nova.get("/os-services", params={"binary": "nova-compute", "host": host}, headers=api("2.53"))
        service: dict[str, Any] = found.json()["services"][0]
        return service

    def _undo(self) -> None:
        """Every compute enabled and forced up (one with evacuation records restarted: only that clears them),
        the servers deleted, then the group, the network and the flavor."""
        nova = self.nova
        for host in ("compute-1", "compute-2", "compute-3"):
            service = self.service(host)
            if service["forced_down"]:
                up = nova.put(f"/os-services/{service['id']}", json={"forced_down": False}, headers=api("2.53"))
                if up.status_code == 400:
                    restart_forced_down_compute(self.stack, nova, host)
            if service["status"] == "disabled":
                nova.put(f"/os-services/{service['id']}", json={"status": "enabled"}, headers=api("2.53"))
        for ident in self.servers:
            nova.delete(f"/servers/{ident}")
        for ident in self.servers:
            wait_for(lambda i=ident: nova.get(f"/servers/{i}").status_code == 404, f"{ident} deleted")
        if self.group:
            nova.delete(f"/os-server-groups/{self.group}")
        if self.network:
            self.neutron.delete(f"/v2.0/networks/{self.network}")
        if self.flavor:
            nova.delete(f"/flavors/{self.flavor}")


@contextmanager
def scene(stack: Stack, prefix: str, cidr: str, *, vcpus: int = 1, group: bool = False) -> Iterator[Scene]:
    """A :class:`Scene` named ``prefix-<ns>``: its flavor of ``vcpus``, its network on ``cidr``, an
    anti-affinity group if ``group``; undone afterwards, whatever the test left."""
    endpoints = stack.credentials["endpoints"]
    headers = {"X-Auth-Token": stack.token()}
    nova = httpx.Client(base_url=endpoints["compute"], headers=headers, timeout=60)
    neutron = httpx.Client(base_url=endpoints["network"], headers=headers, timeout=60)
    made = Scene(stack, nova, neutron, f"{prefix}-{time.time_ns()}")
    try:
        flavor = nova.post("/flavors", json={"flavor": {"name": made.tag, "ram": 64, "vcpus": vcpus, "disk": 0}})
        assert flavor.status_code == 200, flavor.text
        made.flavor = flavor.json()["flavor"]["id"]
        net = neutron.post("/v2.0/networks", json={"network": {"name": made.tag}})
        assert net.status_code == 201, net.text
        made.network = net.json()["network"]["id"]
        subnet = {"subnet": {"network_id": made.network, "ip_version": 4, "cidr": cidr}}
        assert neutron.post("/v2.0/subnets", json=subnet).status_code == 201
        if group:
            body = {"server_group": {"name": made.tag, "policy": "anti-affinity"}}
            made_group = nova.post("/os-server-groups", json=body, headers=api("2.64"))
            assert made_group.status_code == 200, made_group.text
            made.group = made_group.json()["server_group"]["id"]
        yield made
    finally:
        try:
            made._undo()
        finally:
            nova.close()
            neutron.close()


def require_backing_services() -> None:
    require_service("MariaDB", "127.0.0.1", 3306)
    require_service("RabbitMQ", "127.0.0.1", 5672)
    for tool in ("mysql", "rabbitmqctl"):
        if shutil.which(tool) is None:
            reason = f"'{tool}' is not installed (it comes with the server)"
            if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
            pytest.skip(reason)
