"""The real stack: it is up as ``status`` says, Doctor's operations work on it, Nova notifies on its vhost.

Everything goes through the stack's public faces: the CLI, Keystone,
Nova's REST API at explicit microversions, RabbitMQ. The session's stack is
shared (see ``conftest.py``), so each test puts back what it changes.
"""

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openstack_support import Stack, api, vigil, wait_for

from vigil.testbed.openstack.glance import IMAGE_ID

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(900)]

FLAVOR = "vigil-test-tiny"


def status_report(stack: Stack) -> dict[str, Any]:
    done = vigil("testbed", "openstack", "status", "--base-dir", str(stack.base), "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def hypervisors_up(report: dict[str, Any]) -> set[str]:
    return {h["name"] for h in report["hypervisors"] if h["state"] == "up" and h["status"] == "enabled"}


def test_status_lists_every_service_healthy_and_three_hypervisors_up(openstack_stack: Stack) -> None:
    # An earlier test may have restarted a compute (after an evacuation): it reports up again within seconds.
    def all_up() -> dict[str, Any] | None:
        report = status_report(openstack_stack)
        return report if len(hypervisors_up(report)) >= 3 else None

    report = wait_for(all_up, "three hypervisors up", timeout_s=120)
    assert report["up"] is True
    names = {s["name"] for s in report["services"]}
    assert {"keystone", "glance", "placement", "neutron-api", "nova-api", "nova-conductor", "nova-scheduler"} <= names
    for service in report["services"]:
        assert service["alive"], service
        assert service["healthy"], service
    assert {"compute-1", "compute-2", "compute-3"} <= hypervisors_up(report)


def test_up_again_reports_it_is_up_and_credentials_are_owner_only(openstack_stack: Stack) -> None:
    again = vigil("testbed", "openstack", "up", "--computes", "3", "--base-dir", str(openstack_stack.base), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_up"] is True
    for name in ("credentials.json", "admin-openrc", "stack.json"):
        assert stat.S_IMODE((openstack_stack.base / name).stat().st_mode) == 0o600, name
    creds = openstack_stack.credentials
    assert creds["auth_url"] == "http://127.0.0.1:5000/v3"
    assert creds["region_name"] == "RegionOne"
    assert creds["notifications"]["amqp_url"].endswith("/vigil_os")
    assert creds["notifications"]["queue"] == "versioned_notifications.info"


def test_nova_refuses_a_request_without_a_keystone_token(openstack_stack: Stack) -> None:
    """authtoken is in Nova's pipeline: no header-trusting shortcut."""
    compute = openstack_stack.credentials["endpoints"]["compute"]
    assert httpx.get(f"{compute}/servers", headers={"X-Auth-Token": "admin"}, timeout=30).status_code == 401


def flavor_id(nova: httpx.Client) -> str:
    found = nova.get("/flavors", params={"is_public": "None"}).json()["flavors"]
    for flavor in found:
        if flavor["name"] == FLAVOR:
            return str(flavor["id"])
    made = nova.post("/flavors", json={"flavor": {"name": FLAVOR, "ram": 64, "vcpus": 1, "disk": 0}})
    assert made.status_code == 200, made.text
    return str(made.json()["flavor"]["id"])


@pytest.fixture
def server_on_compute_2(nova: httpx.Client) -> Iterator[dict[str, Any]]:
    body = {
        "server": {
            "name": "vigil-test-doctor",
            "imageRef": IMAGE_ID,
            "flavorRef": flavor_id(nova),
            "networks": "none",
            "host": "compute-2",
        }
    }
    made = nova.post("/servers", json=body, headers=api("2.74"))
    assert made.status_code == 202, made.text
    server_id = made.json()["server"]["id"]
    try:

        def active() -> dict[str, Any] | None:
            server: dict[str, Any] = nova.get(f"/servers/{server_id}", headers=api("2.16")).json()["server"]
            assert server["status"] != "ERROR", server.get("fault")
            return server if server["status"] == "ACTIVE" else None

        yield wait_for(active, "the server to be ACTIVE")
    finally:
        nova.delete(f"/servers/{server_id}")


def compute_service(nova: httpx.Client, host: str) -> dict[str, Any]:
    found = nova.get("/os-services", params={"binary": "nova-compute", "host": host}, headers=api("2.53"))
    assert found.status_code == 200, found.text
    services: list[dict[str, Any]] = found.json()["services"]
    assert len(services) == 1
    return services[0]


def force(nova: httpx.Client, service_id: str, down: bool) -> httpx.Response:
    return nova.put(f"/os-services/{service_id}", json={"forced_down": down}, headers=api("2.53"))


def test_forcing_a_compute_down_shows_host_status_down_on_its_server(
    nova: httpx.Client, server_on_compute_2: dict[str, Any]
) -> None:
    """Doctor's consistent-state step: force-down at 2.53, host_status (2.16) DOWN, then back UP."""
    server_id = server_on_compute_2["id"]
    assert server_on_compute_2["OS-EXT-SRV-ATTR:host"] == "compute-2"
    assert server_on_compute_2["host_status"] == "UP"
    service = compute_service(nova, "compute-2")
    forced = force(nova, service["id"], True)
    try:
        assert forced.status_code == 200, forced.text
        assert forced.json()["service"]["forced_down"] is True
        assert compute_service(nova, "compute-2")["state"] == "down"
        server = nova.get(f"/servers/{server_id}", headers=api("2.16")).json()["server"]
        assert server["host_status"] == "DOWN"
        # At 2.15 the field does not exist: it is the microversion that brings it.
        assert "host_status" not in nova.get(f"/servers/{server_id}", headers=api("2.15")).json()["server"]
    finally:
        back = force(nova, service["id"], False)
    assert back.status_code == 200, back.text
    assert back.json()["service"]["forced_down"] is False

    def up_again() -> bool:
        server = nova.get(f"/servers/{server_id}", headers=api("2.16")).json()["server"]
        return bool(server["host_status"] == "UP")

    wait_for(up_again, "host_status UP after forced_down false", timeout_s=30)


def read_notifications(stack: Stack, *args: str, timeout_s: float = 60.0) -> tuple[int, list[dict[str, Any]]]:
    """Take notifications off the stack's queue with a plain AMQP client (kombu, in the stack's venv)."""
    notifications = stack.credentials["notifications"]
    command = [
        str(stack.layout.python),
        str(stack.layout.lib / "vigil_os_notifications.py"),
        notifications["amqp_url"],
        notifications["queue"],
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_nova_publishes_versioned_notifications_on_the_stack_vhost(openstack_stack: Stack, nova: httpx.Client) -> None:
    """A compute service disabled with a reason and enabled again: service.update arrives on the queue."""
    read_notifications(openstack_stack)  # what is queued already (the computes' start-up, earlier tests)
    service = compute_service(nova, "compute-3")
    reason = f"vigil-test-{time.time_ns()}"
    changed = nova.put(
        f"/os-services/{service['id']}", json={"status": "disabled", "disabled_reason": reason}, headers=api("2.53")
    )
    try:
        assert changed.status_code == 200, changed.text
        code, seen = read_notifications(openstack_stack, "--wait", "30", "--until", "service.update", "--match", reason)
    finally:
        nova.put(f"/os-services/{service['id']}", json={"status": "enabled"}, headers=api("2.53"))
    assert code == 0, f"no service.update naming {reason} in {[n['event_type'] for n in seen]}"
    update = seen[-1]
    assert update["publisher_id"] == "nova-compute:compute-3"  # Nova publishes it as the service itself
    data = update["payload"]["nova_object.data"]
    assert update["payload"]["nova_object.name"] == "ServiceStatusPayload"
    assert data["host"] == "compute-3"
    assert data["disabled"] is True
    assert data["disabled_reason"] == reason


def test_up_restarts_a_killed_compute_whose_pid_file_is_stale(openstack_stack: Stack, nova: httpx.Client) -> None:
    """A nova-compute killed with SIGKILL leaves a stale pid file: status says so, up starts it again."""
    pid_file = openstack_stack.base / "pids" / "nova-compute-3.pid"
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(), "the kill")
    done = vigil("testbed", "openstack", "status", "--base-dir", str(openstack_stack.base), "--json", timeout=60)
    report = json.loads(done.stdout)
    assert report["up"] is False
    assert [s["name"] for s in report["services"] if not s["alive"]] == ["nova-compute-3"]
    again = vigil("testbed", "openstack", "up", "--computes", "3", "--base-dir", str(openstack_stack.base), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_up"] is False
    assert int(pid_file.read_text().split()[0]) != pid
    assert compute_service(nova, "compute-3")["state"] == "up"


@pytest.fixture
def neutron(openstack_stack: Stack) -> Iterator[httpx.Client]:
    headers = {"X-Auth-Token": openstack_stack.token()}
    with httpx.Client(base_url=openstack_stack.credentials["endpoints"]["network"], headers=headers, timeout=60) as c:
        yield c


def test_a_server_port_is_bound_by_the_agentless_driver_and_takes_data_plane_status(
    nova: httpx.Client, neutron: httpx.Client
) -> None:
    """Nova boots with a Neutron network: the bindall ML2 driver binds the port (no agent), and the
    port takes Doctor's data_plane_status DOWN."""
    net = neutron.post("/v2.0/networks", json={"network": {"name": f"vigil-test-{time.time_ns()}"}})
    assert net.status_code == 201, net.text
    net_id = net.json()["network"]["id"]
    server_id = None
    try:
        subnet = {"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.99.0.0/24"}}
        assert neutron.post("/v2.0/subnets", json=subnet).status_code == 201
        body = {
            "server": {
                "name": "vigil-test-port",
                "imageRef": IMAGE_ID,
                "flavorRef": flavor_id(nova),
                "networks": [{"uuid": net_id}],
                "host": "compute-1",
            }
        }
        made = nova.post("/servers", json=body, headers=api("2.74"))
        assert made.status_code == 202, made.text
        server_id = made.json()["server"]["id"]

        def active() -> bool:
            server = nova.get(f"/servers/{server_id}").json()["server"]
            assert server["status"] != "ERROR", server.get("fault")
            return bool(server["status"] == "ACTIVE")

        wait_for(active, "the server with a port to be ACTIVE")
        ports = neutron.get("/v2.0/ports", params={"device_id": server_id}).json()["ports"]
        assert len(ports) == 1
        port = ports[0]
        assert port["binding:vif_type"] == "ovs"
        assert port["binding:host_id"] == "compute-1"
        assert port["status"] == "ACTIVE"
        changed = neutron.put(f"/v2.0/ports/{port['id']}", json={"port": {"data_plane_status": "DOWN"}})
        assert changed.status_code == 200, changed.text
        assert neutron.get(f"/v2.0/ports/{port['id']}").json()["port"]["data_plane_status"] == "DOWN"
    finally:
        if server_id is not None:
            nova.delete(f"/servers/{server_id}")
            wait_for(lambda: nova.get(f"/servers/{server_id}").status_code == 404, "the server's deletion")
        wait_for(lambda: neutron.delete(f"/v2.0/networks/{net_id}").status_code in (204, 404), "the network's deletion")
