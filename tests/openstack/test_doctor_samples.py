"""OPNFV Doctor's own fault-management test, played against Vigil on the embedded cloud and on a real OpenStack.

Doctor's test (opnfv/doctor ``doctor_tests/main.py``, ``scenario/fault_management.py``) boots VMs through
Nova, creates one Aodh event alarm per VM (``alarm.py``), starts its sample consumer (``consumer/sample.py``)
and sample monitor (``monitor/sample.py``), breaks the host of one VM, and then checks through Nova that
the host is down and computes the notification time (consumer's receipt minus monitor's detection). Its
cleanup forces the compute service up in Nova again, deletes the alarms and the VMs.

Here each of Doctor's parts is reproduced on the wire, in test code (none of Doctor's code is copied):

* the **monitor** sends ``PUT /events`` with a JSON list of one event, as ``json.dumps([data])``, with
  ``Content-Type`` and ``Accept`` ``application/json`` and ``X-Auth-Token``; the event is
  ``{"time": datetime.now().isoformat(), "type": "compute.host.down", "details": {"hostname",
  "status": "down", "monitor": "monitor_sample", "monitor_event_id": "monitor_sample_event1"}}``
  (the id is the same on every run); it records its detection time just before and ignores the answer.
  Configured for Vitrage as its inspector, it posts the event alone to ``<rca endpoint>/v1/event``;
* the **consumer** is a threaded HTTP/1.1 server answering ``POST /failure`` with ``200 OK`` (text),
  recording ``time.time()`` (overwritten by each call) and the JSON body; anything else is Flask's 404 or
  405;
* the **alarm** Doctor creates in Aodh (``doctor_alarm<i>``: event type ``compute.instance.update``,
  ``traits.instance_id == <vm>`` and ``traits.state == error``, action ``http://<consumer>/failure``,
  ``repeat_actions`` false) is made through Vigil's subscription API, Vigil's Aodh-compatible alarm
  definition: ``format: aodh``, the VM as its only resource, ``instance.down`` alarms, ``raised`` only
  (Aodh fires such an alarm once, and a clearing carries no ``state == error``). Vigil has no Aodh
  ``/v2/alarms`` API of its own.

The same test runs on both VIMs. On OpenStack the VMs are booted through Nova, with Vigil running (its map
follows Nova's notifications), and Doctor's checks are made
through Nova's API as Doctor makes them: ``os-services`` at 2.34 (Doctor's ``nova_version``) for the host's
``state``, each server at 2.16 for ``host_status`` and ``status``, and its cleanup's ``force-down`` at 2.34.
The embedded cloud has no Nova API: there the VMs are booted through Vigil's ``/v1/instances`` and the same
checks are made through Vigil's own API (``/v1/hosts``, ``/v1/instances``, which carry Nova 2.16's
``host_status``), and the cleanup's force-up is Vigil's host action.

Two things are Vigil's, not Doctor's. The monitor's token is a Vigil monitor token: Doctor's monitor sends
a Keystone token to every inspector but its own sample one, which gets none (on OpenStack Vigil takes a
Keystone token too, validated with Keystone: a test below). The recovery is reported to Vigil as Doctor's
event with ``status: up`` and an id of its own, before Doctor's cleanup runs: Doctor's sample monitor
reports only failures, and Vigil then forces the service up in Nova itself, so the cleanup finds it up. A
second run against the same Vigil passes as the first: the sample monitor's ``monitor_event_id`` is the
same on every run, its time is not.
"""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from openstack_support import Stack, api, wait_active, wait_for

from vigil.demo_openstack import vim_settings
from vigil.domain.callbacks import LOOPBACK
from vigil.harness.server import ServeProcess
from vigil.testbed.openstack.glance import IMAGE_ID

ADMIN, MONITOR, MEMBER = "doctor-admin", "doctor-monitor", "doctor-member"
FAILED_HOST, OTHER_HOST = "compute-3", "compute-2"  # the demo and test_fault_push fail compute-1 and compute-2
DOCTOR_NOVA_VERSION = "2.34"  # doctor_tests/os_clients.py: nova_version
INSTANCE_BASENAME, ALARM_BASENAME = "doctor_vm", "doctor_alarm"

pytestmark = pytest.mark.timeout(300)


# -- Doctor's sample consumer --------------------------------------------------------------------------------


class DoctorConsumer:
    """Doctor's sample consumer on the wire: ``POST /failure`` answered ``OK``, its time kept."""

    def __init__(self) -> None:
        self.notified_time: float | None = None  # Doctor's consumer keeps the latest
        self.failures: list[dict[str, Any]] = []  # every POST /failure: time, headers, data
        self.other_requests: list[tuple[str, str, int]] = []  # (method, path, status) of anything else
        self._lock = threading.Lock()
        consumer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # werkzeug's threaded server keeps connections alive

            def do_POST(self) -> None:
                if self.path != "/failure":
                    self._answer(404, b"Not Found")
                    return
                notified_time = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                data = json.loads(body.decode("utf8"))  # json.loads(request.data.decode('utf8'))
                with consumer._lock:
                    consumer.notified_time = notified_time
                    consumer.failures.append({"time": notified_time, "headers": dict(self.headers), "data": data})
                self._answer(200, b"OK")

            def do_GET(self) -> None:
                self._answer(405 if self.path == "/failure" else 404, b"")

            def _answer(self, status: int, body: bytes) -> None:
                if status != 200:
                    with consumer._lock:
                        consumer.other_requests.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if status == 405:
                    self.send_header("Allow", "OPTIONS, POST")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="doctor-consumer", daemon=True)

    @property
    def failure_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/failure"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.failures)


# -- Doctor's sample monitor ---------------------------------------------------------------------------------


class DoctorMonitor:
    """Doctor's sample monitor on the wire: on detection, report the event to the inspector.

    To the sample inspector (and Congress) it is ``PUT <inspector>/events`` with a list of one event; to
    Vitrage, ``POST <rca endpoint>/v1/event`` with the event alone. Vigil answers both paths.
    """

    event_type = "compute.host.down"

    def __init__(self, vigil_url: str, token: str, inspector_type: str = "sample") -> None:
        self.vitrage = inspector_type == "vitrage"
        self.inspector_url = f"{vigil_url.rstrip('/')}/{'v1/event' if self.vitrage else 'events'}"
        self.token = token
        self.detected_time: float | None = None

    def detect(self, hostname: str) -> httpx.Response:
        """The pinger's timeout: note the time, then report (Doctor ignores the answer; the test looks at it)."""
        self.detected_time = time.time()
        return self.report(hostname, self.event_type, "down")

    def report(
        self, hostname: str, event_type: str, status: str, event_id: str = "monitor_sample_event1"
    ) -> httpx.Response:
        data = {
            "time": datetime.now().isoformat(),
            "type": event_type,
            "details": {
                "hostname": hostname,
                "status": status,
                "monitor": "monitor_sample",
                "monitor_event_id": event_id,
            },
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json", "X-Auth-Token": self.token}
        if self.vitrage:
            return httpx.post(self.inspector_url, content=json.dumps(data), headers=headers, timeout=30)
        return httpx.put(self.inspector_url, content=json.dumps([data]), headers=headers, timeout=30)


def outcomes(answer: httpx.Response) -> list[dict[str, Any]]:
    """Vigil's outcomes of the events of one report (``PUT /events`` answers a list, ``POST /v1/event`` one)."""
    document = answer.json()
    return document["events"] if "events" in document else [document["event"]]  # type: ignore[no-any-return]


def doctor_alarm(index: int, vm: str, action: str) -> dict[str, Any]:
    """Doctor's Aodh event alarm on one VM (doctor_tests/alarm.py), as Vigil's Aodh-format subscription."""
    return {
        "name": f"{ALARM_BASENAME}{index}",
        "callbacks": [action],
        "format": "aodh",
        "filter": {"resource_ids": [vm], "event_types": ["instance.down"], "lifecycles": ["raised"]},
    }


# -- the clouds: where the VMs are booted and where Doctor's checks are made ---------------------------------


class Cloud:
    """One VIM under Vigil: Doctor's VMs on it, and the checks Doctor makes after a notification."""

    name: ClassVar[str]
    project: str
    vms: dict[str, str]  # id -> host

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def prepare(self) -> None:
        """What Doctor's VMs need before Vigil starts (the project Vigil's tokens name)."""

    def boot(self, vigil: httpx.Client, placements: list[str]) -> None:
        """Boot Doctor's VMs, one per placement, ACTIVE and known to Vigil."""
        raise NotImplementedError

    def host_state(self, vigil: httpx.Client, host: str) -> str:
        """Doctor's check_host_status: the compute service's ``state``, up or down."""
        raise NotImplementedError

    def server(self, vigil: httpx.Client, vm: str) -> tuple[str, str]:
        """A VM's ``(status, host_status)``, as its owner (or Tacker) reads them after a notification."""
        raise NotImplementedError

    def unset_forced_down(self, vigil: httpx.Client, host: str) -> None:
        """Doctor's cleanup: force the compute service up again."""
        raise NotImplementedError

    def delete_vms(self, vigil: httpx.Client) -> None:
        raise NotImplementedError


class EmbeddedCloud(Cloud):
    """Vigil's own cloud: VMs through ``/v1/instances``, Doctor's checks through Vigil's API."""

    name = "embedded"
    project = "doctor"

    def __init__(self, directory: Path) -> None:
        self.topology = directory / "doctor-cloud.yaml"
        self.vms = {}

    def settings(self) -> dict[str, Any]:
        self.topology.parent.mkdir(parents=True, exist_ok=True)
        hosts = "\n".join(f"  - {{name: compute-{n}, zone: az-1, switch: tor-1, vcpus: 8}}" for n in (1, 2, 3))
        projects = f"projects:\n  - {{id: {self.project}, name: {self.project}}}\n"
        self.topology.write_text(f"switches:\n  - {{name: tor-1}}\nhosts:\n{hosts}\n{projects}")
        return {"cloud": {"topology": str(self.topology)}}

    def boot(self, vigil: httpx.Client, placements: list[str]) -> None:
        self.vms = {}  # a new run boots new VMs
        for n, host in enumerate(placements):
            body = {"name": f"{INSTANCE_BASENAME}{n}", "project": self.project, "host": host}
            booted = vigil.post("/v1/instances", json=body, headers={"X-Auth-Token": ADMIN})
            assert booted.status_code == 202, booted.text
            self.vms[booted.json()["instance"]["id"]] = host
        for vm in self.vms:
            wait_for(lambda vm=vm: self.server(vigil, vm)[0] == "ACTIVE", f"{vm} ACTIVE")

    def host_state(self, vigil: httpx.Client, host: str) -> str:
        shown = vigil.get(f"/v1/hosts/{host}", headers={"X-Auth-Token": ADMIN}).json()["host"]
        return "down" if shown["forced_down"] else "up"

    def server(self, vigil: httpx.Client, vm: str) -> tuple[str, str]:
        shown = vigil.get(f"/v1/instances/{vm}", headers={"X-Auth-Token": MEMBER}).json()["instance"]
        return shown["state"], shown["host_status"]

    def unset_forced_down(self, vigil: httpx.Client, host: str) -> None:
        action = {"action": "force-up"}
        answered = vigil.post(f"/v1/hosts/{host}/action", json=action, headers={"X-Auth-Token": ADMIN})
        assert answered.status_code < 300, answered.text

    def delete_vms(self, vigil: httpx.Client) -> None:
        for vm in self.vms:
            deleted = vigil.delete(f"/v1/instances/{vm}", headers={"X-Auth-Token": ADMIN})
            assert deleted.status_code < 300, deleted.text


class OpenStackCloud(Cloud):
    """The real stack: VMs through Nova (Vigil's map follows it), Doctor's checks through Nova's API."""

    name = "openstack"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        endpoints = stack.credentials["endpoints"]
        headers = {"X-Auth-Token": stack.token()}
        self.nova = httpx.Client(base_url=endpoints["compute"], headers=headers, timeout=60)
        self.neutron = httpx.Client(base_url=endpoints["network"], headers=headers, timeout=60)
        self.vms = {}
        self.booted: list[str] = []  # every VM of every run, for the clean-up
        self.project = ""
        self.flavor: str | None = None
        self.network: str | None = None

    def settings(self) -> dict[str, Any]:
        return {"vim": vim_settings(self.stack.credentials)}

    def prepare(self) -> None:
        tag = f"doctor-{time.time_ns()}"
        flavor = self.nova.post("/flavors", json={"flavor": {"name": tag, "ram": 64, "vcpus": 1, "disk": 0}})
        assert flavor.status_code == 200, flavor.text
        self.flavor = flavor.json()["flavor"]["id"]
        network = self.neutron.post("/v2.0/networks", json={"network": {"name": tag}})  # Doctor's doctor_net
        assert network.status_code == 201, network.text
        self.network = network.json()["network"]["id"]
        subnet = {"subnet": {"network_id": self.network, "ip_version": 4, "cidr": "10.98.0.0/24"}}
        assert self.neutron.post("/v2.0/subnets", json=subnet).status_code == 201
        credentials = self.stack.credentials
        projects = httpx.get(
            f"{credentials['auth_url']}/projects",
            params={"name": credentials["project_name"]},
            headers=self.nova.headers,
            timeout=30,
        )
        [project] = projects.json()["projects"]  # the one Doctor's VMs are booted into (here the admin's)
        self.project = project["id"]

    def boot(self, vigil: httpx.Client, placements: list[str]) -> None:
        """Through Nova, with Vigil running: its map follows Nova's notifications."""
        self.vms = {}
        for n, host in enumerate(placements):
            body = {
                "server": {
                    "name": f"{INSTANCE_BASENAME}{n}",
                    "imageRef": IMAGE_ID,
                    "flavorRef": self.flavor,
                    "networks": [{"uuid": self.network}],
                    "host": host,  # Doctor lets the scheduler place them and fails the host of one
                }
            }
            booted = self.nova.post("/servers", json=body, headers=api("2.74"))
            assert booted.status_code == 202, booted.text
            self.vms[booted.json()["server"]["id"]] = host
            self.booted.append(booted.json()["server"]["id"])
        for vm in self.vms:
            wait_active(self.nova, vm)  # Doctor's wait_for_vm_launch
            assert self.nova.get(f"/servers/{vm}").json()["server"]["tenant_id"] == self.project
        # Aodh takes an alarm on any instance id; Vigil refuses a subscription to a VM it does not know (422,
        # as for another project's), and Nova shows a VM ACTIVE a moment before its notification reaches Vigil.
        admin = {"X-Auth-Token": ADMIN}
        for vm in self.vms:
            wait_for(lambda vm=vm: vigil.get(f"/v1/instances/{vm}", headers=admin).status_code == 200, f"{vm} in Vigil")

    def host_state(self, vigil: httpx.Client, host: str) -> str:
        params = {"host": host, "binary": "nova-compute"}
        services = self.nova.get("/os-services", params=params, headers=api(DOCTOR_NOVA_VERSION)).json()["services"]
        state: str = services[0]["state"]  # service[0].__dict__.get('state')
        return state

    def server(self, vigil: httpx.Client, vm: str) -> tuple[str, str]:
        shown = self.nova.get(f"/servers/{vm}", headers=api("2.16")).json()["server"]
        return shown["status"], shown["host_status"]

    def ports_down(self, vm: str) -> bool:
        ports = self.neutron.get("/v2.0/ports", params={"device_id": vm}).json()["ports"]
        return bool(ports) and all(p["data_plane_status"] == "DOWN" for p in ports)

    def unset_forced_down(self, vigil: httpx.Client, host: str) -> None:
        # novaclient's services.force_down(host, 'nova-compute', False) below 2.53: PUT /os-services/force-down.
        body = {"host": host, "binary": "nova-compute", "forced_down": False}
        answered = self.nova.put("/os-services/force-down", json=body, headers=api(DOCTOR_NOVA_VERSION))
        assert answered.status_code == 200, answered.text

    def delete_vms(self, vigil: httpx.Client) -> None:
        for vm in self.vms:
            self.nova.delete(f"/servers/{vm}")

    def clean_up(self) -> None:
        """Whatever the test left: every host forced up, the VMs, network and flavor gone."""
        try:
            for host in (FAILED_HOST, OTHER_HOST):
                found = self.nova.get(
                    "/os-services", params={"binary": "nova-compute", "host": host}, headers=api("2.53")
                )
                for service in found.json().get("services", []):
                    if service["forced_down"]:
                        self.nova.put(f"/os-services/{service['id']}", json={"forced_down": False}, headers=api("2.53"))
            for vm in self.booted:
                self.nova.delete(f"/servers/{vm}")
            for vm in self.booted:
                wait_for(lambda vm=vm: self.nova.get(f"/servers/{vm}").status_code == 404, f"{vm} deleted")
            if self.network is not None:
                self.neutron.delete(f"/v2.0/networks/{self.network}")
            if self.flavor is not None:
                self.nova.delete(f"/flavors/{self.flavor}")
        finally:
            self.nova.close()
            self.neutron.close()


@pytest.fixture(params=[pytest.param("embedded"), pytest.param("openstack", marks=pytest.mark.openstack)])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cloud]:
    if request.param == "embedded":
        yield EmbeddedCloud(tmp_path / "cloud")
        return
    stack: Stack = request.getfixturevalue("openstack_stack")
    openstack = OpenStackCloud(stack)
    try:
        yield openstack
    finally:
        openstack.clean_up()


def vigil_server(cloud: Cloud, data_dir: Path) -> ServeProcess:
    tokens = {
        ADMIN: {"project": "admin", "role": "admin"},
        MONITOR: {"project": "monitoring", "role": "monitor"},
        MEMBER: {"project": cloud.project, "role": "member"},
    }
    settings = {
        **cloud.settings(),
        "inspector": {"hold_down_s": 0},
        "notifier": {"allowed_callback_networks": list(LOOPBACK)},
    }
    return ServeProcess(data_dir, tokens, settings=settings)


def traits_of(alarm: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, _, value in alarm["reason_data"]["event"]["traits"]}


# -- Doctor's fault-management test --------------------------------------------------------------------------


def doctor_fault_management(
    cloud: Cloud, vigil: httpx.Client, consumer: DoctorConsumer, inspector_type: str = "sample"
) -> None:
    """setup, start, the checks of main.py, and cleanup, with Vigil as Doctor's inspector and notifier."""
    on_failed = [vm for vm, host in cloud.vms.items() if host == FAILED_HOST]
    elsewhere = [vm for vm, host in cloud.vms.items() if host != FAILED_HOST]
    member = {"X-Auth-Token": MEMBER}

    # setup: the alarms (one per VM, as the doctor user), the consumer, the monitor on the VM's host.
    alarms: dict[str, str] = {}  # vm -> alarm (subscription) id
    names: dict[str, str] = {}  # alarm name -> vm
    for n, vm in enumerate(cloud.vms):
        created = vigil.post("/v1/subscriptions", json=doctor_alarm(n, vm, consumer.failure_url), headers=member)
        assert created.status_code == 201, created.text
        alarms[vm] = created.json()["subscription"]["id"]
        names[f"{ALARM_BASENAME}{n}"] = vm
    for vm in cloud.vms:
        assert cloud.server(vigil, vm) == ("ACTIVE", "UP")
    assert cloud.host_state(vigil, FAILED_HOST) == "up"
    monitor = DoctorMonitor(str(vigil.base_url), MONITOR, inspector_type)

    # start: the host fails; the monitor detects it and reports it to the inspector.
    answer = monitor.detect(FAILED_HOST)
    assert answer.status_code == 200, answer.text
    [outcome] = outcomes(answer)
    assert (outcome["hostname"], outcome["outcome"]) == (FAILED_HOST, "fault_opened")

    # The consumer hears of each VM on the failed host through the alarm Doctor created on it, and of no other.
    wait_for(lambda: len(consumer.received()) >= len(on_failed), "the consumer's notifications")
    received = consumer.received()
    assert len(received) == len(on_failed)
    assert consumer.notified_time is not None
    assert monitor.detected_time is not None
    assert consumer.notified_time > monitor.detected_time  # Doctor's notification_time; its bound is bench's
    by_vm: dict[str, dict[str, Any]] = {}
    for failure in received:
        data = failure["data"]
        assert failure["headers"]["Content-Type"] == "application/json"
        vm = names[data["alarm_name"]]
        by_vm[vm] = data
        assert data["alarm_id"] == alarms[vm]
        assert data["current"] == "alarm"
        assert data["reason_data"]["type"] == "event"
        event = data["reason_data"]["event"]
        assert event["event_type"] == "compute.instance.update"  # the event_rule's event_type
        traits = traits_of(data)
        assert (traits["instance_id"], traits["state"]) == (vm, "error")  # the event_rule's query
        assert traits["tenant_id"] == traits["project_id"] == cloud.project  # Aodh matches the alarm's project
        assert FAILED_HOST not in json.dumps(data)  # a tenant gets no physical detail
    assert sorted(by_vm) == sorted(on_failed)

    # main.py: check_host_status('down'), through Nova's API; the VMs' owner sees ERROR on a DOWN host.
    wait_for(lambda: cloud.host_state(vigil, FAILED_HOST) == "down", f"{FAILED_HOST} down")
    for vm in on_failed:
        wait_for(lambda vm=vm: cloud.server(vigil, vm) == ("ERROR", "DOWN"), f"{vm} ERROR on a DOWN host")
        if isinstance(cloud, OpenStackCloud):  # the sample inspector's update_neutron_port_dp_status
            wait_for(lambda vm=vm: cloud.ports_down(vm), f"{vm}'s ports DOWN")
    for vm in elsewhere:
        assert cloud.server(vigil, vm) == ("ACTIVE", "UP")
    assert cloud.host_state(vigil, OTHER_HOST) == "up"

    # The host comes back, and Vigil hears of it (Doctor's event with status up).
    back = monitor.report(FAILED_HOST, "compute.host.up", "up", "monitor_sample_event2")
    assert back.status_code == 200, back.text
    assert [o["outcome"] for o in outcomes(back)] == ["fault_cleared"]
    wait_for(lambda: cloud.host_state(vigil, FAILED_HOST) == "up", f"{FAILED_HOST} up")
    for vm in on_failed:
        wait_for(lambda vm=vm: cloud.server(vigil, vm)[1] == "UP", f"{vm}'s host UP")

    # cleanup: unset_forced_down_hosts (then check_host_status('up')), the alarms, the VMs.
    cloud.unset_forced_down(vigil, FAILED_HOST)
    assert cloud.host_state(vigil, FAILED_HOST) == "up"
    for alarm in alarms.values():
        assert vigil.delete(f"/v1/subscriptions/{alarm}", headers=member).status_code == 204
    cloud.delete_vms(vigil)
    assert len(consumer.received()) == len(on_failed)  # the recovery was no "failure" to the consumer
    assert all(method == "GET" for method, _, _ in consumer.other_requests)  # Vigil's connection warm-ups


def run_doctor(
    cloud: Cloud, placements: list[str], data_dir: Path, *, rounds: int = 1, inspector_type: str = "sample"
) -> None:
    """Doctor's fault-management test, ``rounds`` times in a row, against one ``vigil serve`` on ``cloud``."""
    server = vigil_server(cloud, data_dir)
    consumer = DoctorConsumer()
    consumer.start()

    def against(url: str) -> None:
        with httpx.Client(base_url=f"{url}/", timeout=30) as vigil:
            for _ in range(rounds):
                consumer.failures.clear()
                cloud.boot(vigil, placements)
                doctor_fault_management(cloud, vigil, consumer, inspector_type)

    async def serving() -> None:
        await server.start()
        try:
            await asyncio.to_thread(against, server.url)
        finally:
            await server.stop()

    try:
        asyncio.run(serving())
    finally:
        consumer.stop()


def test_doctor_s_sample_monitor_and_consumer_pass_doctor_s_fault_test(cloud: Cloud, tmp_path: Path) -> None:
    placements = [FAILED_HOST, FAILED_HOST, OTHER_HOST]  # two VMs on the host that fails, one elsewhere
    cloud.prepare()
    run_doctor(cloud, placements, tmp_path / "vigil")


def test_doctor_s_monitor_configured_for_vitrage_reports_to_v1_event(tmp_path: Path) -> None:
    """With INSPECTOR_TYPE=vitrage, Doctor's monitor posts the event alone to <rca endpoint>/v1/event."""
    cloud = EmbeddedCloud(tmp_path / "cloud")
    run_doctor(cloud, [FAILED_HOST, OTHER_HOST], tmp_path / "vigil", inspector_type="vitrage")


def test_doctor_s_fault_test_passes_again_against_the_same_vigil(tmp_path: Path) -> None:
    """Doctor's CI runs its test again and again against one cloud, and its main.py retries a run once.

    Its sample monitor sends monitor_event_id 'monitor_sample_event1' on every run (its collectd monitor
    'monitor_<type>_event1'): with a new time, the second run's failure is a new one, not a duplicate."""
    run_doctor(EmbeddedCloud(tmp_path / "cloud"), [FAILED_HOST, OTHER_HOST], tmp_path / "vigil", rounds=2)


@pytest.mark.openstack
def test_doctor_s_monitor_reports_with_its_keystone_token(openstack_stack: Stack, tmp_path: Path) -> None:
    """Doctor's monitor sends the admin's Keystone token (identity_auth.get_session().get_token()): with the
    OpenStack driver Vigil validates it with Keystone and takes it as an admin's."""
    cloud = OpenStackCloud(openstack_stack)
    cloud.project = "doctor"  # no VM: any project will do
    server = vigil_server(cloud, tmp_path / "vigil")

    async def serving() -> httpx.Response:
        await server.start()
        try:
            monitor = DoctorMonitor(server.url, openstack_stack.token())  # the admin's, as Doctor's
            return await asyncio.to_thread(monitor.detect, FAILED_HOST)
        finally:
            await server.stop()

    try:
        answer = asyncio.run(serving())
    finally:
        cloud.clean_up()  # should Vigil ever take it, the host it forced down is forced up again
    assert answer.status_code == 200, answer.text
