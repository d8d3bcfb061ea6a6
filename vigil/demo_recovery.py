"""``vigil demo recovery``: a host fails, is fenced through its BMC, and its instances come back elsewhere.

Masakari's use case, on one machine, with Vigil as the whole chain:

1. an embedded cloud in a scratch directory (:func:`vigil.demo.demo_topology`:
   ``N`` instances on ``compute-1``, the ACT of an anti-affinity pair
   among them), every instance's recovery policy ``evacuate`` (``auto``);
2. BMC emulators on loopback (:mod:`vigil.testbed.bmc`: pyghmi's IPMI BMC),
   compute-1 fenced through Debian's real ``fence_ipmilan`` with its default
   timings (``power_wait`` and the status polling are the agent's);
3. ``compute.host.down`` for compute-1 is reported (T01); Vigil notifies,
   fences (off, then a status that must read off), then evacuates by the
   planner's rules.

It prints ``fence_ms`` (T01 to the fence confirmed), ``recovered_ms`` (T01
to the last evacuation ended), ``instances_recovered`` (ACTIVE on another
host) and ``double_active``: how many instances were rebuilt elsewhere
while the BMC still had compute-1 powered (the recovery's start against the
moment the emulator's power switch went off, as the emulator recorded it).
Fence-first makes it 0; it is measured, not assumed.

Needs fence-agents and ipmitool (``make sysdeps``, as root) and the
testbed's emulators (``pip install 'vigil[testbed]'``).

:func:`run_testbed_recovery_demo` (``vigil demo recovery --testbed``, root)
is the same test on real network namespaces (:mod:`vigil.testbed`), where
double active is not inferred but watched:

1. a testbed of 3 or more hosts comes up with fencing (Vigil's settings
   have every host's fence device: odd hosts IPMI, even ones Redfish) and
   the recovery policy ``evacuate`` (``auto``) for the testbed's project;
2. the VNF runs (:class:`~vigil.testbed.scenario.AppOnTestbed` with
   ``cloud_recovery``): its ACT/STBY pair and non-redundant workers, two
   per host by default (the scheduler spreads them, so the active's host
   has some), each a process answering UDP on its host's address, the
   active one on the service address too; the service probe sends 500
   requests/s to the service from the gateway; the VNF manager switches
   over on a fault and leaves recovery to Vigil;
3. a second probe in the gateway sends 100 requests/s to each instance of
   the active's host at that host's own address (not the service address);
4. the active's host loses its management network (``mgmt-down``): its
   heartbeats stop and the heartbeat monitor declares it lost (T01), while
   its data plane and its instances still answer, until Vigil's fence
   (through ``fence_ipmilan`` and the emulated BMC) powers it off, which
   kills its processes and takes its links down. Vigil then evacuates its
   instances; the workload follows Vigil's map: an instance ACTIVE on
   another host gets a process there, and its old one is left to its
   host's fate (abandoned, not stopped), as an unreachable host's is.

Measured: ``fence_ms`` (T01 to ``fence_confirmed``), ``recovered_ms`` (T01
until the ``recovered`` checkpoint is in and every recovered instance's
new process has answered a request at its new host's address),
``instances_recovered`` (ACTIVE on another host with a process answering
there), ``double_active``: the answers the failed host's instances gave
to requests after the fence was confirmed (the receive time after
``fence_confirmed``'s wall time), plus the instances whose new process
was serving before their old one's last answer (two hosts at once); and
the service outage (the longest run of unanswered requests to the service
address from the fault on, times the probe's interval). The testbed is
taken down at the end, whatever happened.
"""

import asyncio
import contextlib
import functools
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from vigil.api.auth import Principal, Role, TokenRegistry, new_token
from vigil.consumer.manager import Role as VnfRole
from vigil.demo import DEMO_PROJECT, FAILED_HOST, demo_topology
from vigil.settings import load_settings
from vigil.testbed import bed, plan
from vigil.testbed.bmc import device_settings, loopback_bmcs, power_file
from vigil.testbed.netns import TestbedError, socket_in
from vigil.testbed.probe import Sample, read_samples, target_of
from vigil.testbed.scenario import PROBE_TIMEOUT_S, AppOnTestbed, clean_start
from vigil.testbed.state import pid_of, start_process, terminate
from vigil.testbed.workload import FleetError
from vigil.wiring import BackgroundServer, create_server_app

BMC_USER = "admin"


@dataclass(slots=True)
class RecoveryDemoResult:
    instances: int
    fault: str | None = None
    fence_ms: float | None = None
    recovered_ms: float | None = None
    instances_recovered: int = 0
    double_active: int | None = None
    checkpoints_ms: dict[str, float] | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "fence_ms": self.fence_ms,
            "recovered_ms": self.recovered_ms,
            "instances_recovered": self.instances_recovered,
            "double_active": self.double_active,
            "checkpoints_ms": self.checkpoints_ms,
            "fault": self.fault,
            "error": self.error,
        }


def missing_tools(*, testbed: bool = False) -> list[str]:
    """What the demo needs of the machine and is not there (the testbed's even hosts are fenced by Redfish)."""
    tools = ("fence_ipmilan", "fence_redfish", "ipmitool") if testbed else ("fence_ipmilan", "ipmitool")
    return [tool for tool in tools if shutil.which(tool, path="/usr/sbin:/usr/bin") is None]


async def run_recovery_demo(instances: int, *, timeout_s: float = 60.0, evacuate_s: float = 0.5) -> RecoveryDemoResult:
    """Build, fence, recover, measure; see the module docstring."""
    result = RecoveryDemoResult(instances)
    missing = missing_tools()
    if missing:
        result.error = f"needs {', '.join(missing)} (make sysdeps installs fence-agents and ipmitool as root)"
        return result
    with tempfile.TemporaryDirectory(prefix="vigil-recovery-") as scratch:
        directory = Path(scratch)
        password = new_token()[:20]  # IPMI 2.0 passwords are at most 20 bytes
        with loopback_bmcs(directory, [FAILED_HOST], BMC_USER, password) as bmcs:
            topology = directory / "cloud.yaml"
            topology.write_text(yaml.safe_dump(demo_topology(instances), sort_keys=False))
            device = device_settings(bmcs.bmcs[0], "fence_ipmilan", BMC_USER, secrets={"password": password})
            settings = load_settings(
                None,
                data_dir=directory / "vigil",
                cloud={"topology": topology, "evacuate_s": evacuate_s},
                monitor={"listen": "off"},
                inspector={"hold_down_s": 0},
                fencing={"devices": {FAILED_HOST: device}},
                recovery={"default": {"action": "evacuate"}},
            )
            admin, monitor = new_token(), new_token()
            tokens = TokenRegistry({admin: Principal("admin", Role.ADMIN), monitor: Principal("m", Role.MONITOR)})
            async with (
                BackgroundServer(create_server_app(settings, tokens)) as server,
                httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": admin}, timeout=timeout_s) as adm,
                httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": monitor}, timeout=timeout_s) as mon,
            ):
                before = await _instances(adm)
                on_failed = {i for i, (host, _) in before.items() if host == FAILED_HOST}
                await _measure(result, mon, adm, timeout_s)
                if result.fault is None or result.error:
                    return result
                after = await _instances(adm)
                result.instances_recovered = sum(
                    1 for i in on_failed if after[i][0] != FAILED_HOST and after[i][1] == "ACTIVE"
                )
                off_at = power_file(bmcs.state_dir, FAILED_HOST).stat().st_mtime
                started = (result.checkpoints_ms or {}).get("recovery_started")
                base = await _t01(adm, result.fault)
                if started is not None and base is not None:
                    early = base + started / 1000 < off_at
                    result.double_active = result.instances_recovered if early else 0
    return result


async def _measure(
    result: RecoveryDemoResult, monitor: httpx.AsyncClient, admin: httpx.AsyncClient, wait: float
) -> None:
    event = {
        "time": datetime.now(UTC).isoformat(),
        "type": "compute.host.down",
        "details": {
            "hostname": FAILED_HOST,
            "status": "down",
            "monitor": "vigil-demo",
            "monitor_event_id": f"recovery-{time.time():.6f}",
        },
    }
    response = await monitor.post("/v1/event", json=event)
    if response.status_code != 200:
        result.error = f"the event was refused: {response.status_code} {response.text}"
        return
    result.fault = response.json()["event"]["fault"]
    deadline = time.monotonic() + wait
    while True:
        profile = (await admin.get(f"/v1/faults/{result.fault}/profile")).json()
        relative: dict[str, float] = profile["ms_after_T01"]
        if "fence_failed" in relative:
            result.error = "the fence failed: see the host.fence_failed alarm"
            break
        if "recovered" in relative:
            break
        if time.monotonic() > deadline:
            result.error = f"not recovered within {wait} s (checkpoints: {sorted(relative)})"
            break
        await asyncio.sleep(0.02)
    result.checkpoints_ms = relative
    result.fence_ms = relative.get("fence_confirmed")
    result.recovered_ms = relative.get("recovered")


async def _instances(admin: httpx.AsyncClient) -> dict[str, tuple[str, str]]:
    listed = (await admin.get("/v1/instances", params={"project": DEMO_PROJECT})).json()["instances"]
    return {i["id"]: (i["host"], i["state"]) for i in listed}


async def _t01(admin: httpx.AsyncClient, fault: str) -> float | None:
    with contextlib.suppress(KeyError):
        return float((await admin.get(f"/v1/faults/{fault}/profile")).json()["checkpoints"]["T01"])
    return None


# -- vigil demo recovery --testbed: the same test on real namespaces ------------------------

MIN_TESTBED_HOSTS = 3
"""The failed active comes back as a standby, which its anti-affinity group keeps off the new active's host:
with two hosts it would have nowhere to go."""
FAULT = "mgmt-down"  # the host is lost to Vigil, but its data plane and its instances still answer
HOST_PROBE = "probe-failed-host"
HOST_PROBE_RATE = 100.0  # requests/s to each of the failed host's instances
AFTER_FENCE_S = 1.0  # the failed host's instances are probed at least this long after the fence was confirmed
CHECK_WAIT_S = 0.2  # how long one request to a recovered instance's new process waits for its answer


@dataclass(slots=True)
class TestbedRecoveryResult:
    """The recovery demo on the testbed: the figures, and what they came from."""

    __test__ = False  # not a pytest test class

    hosts: int
    host: str | None = None  # the host that failed (the active's)
    instances: list[str] = field(default_factory=list)  # the VNF's instances on it
    fault: str | None = None
    detection_ms: float | None = None  # T01 - T00
    notification_ms: float | None = None  # T09 - T01
    fence_ms: float | None = None  # T01 to fence_confirmed
    power_off_ms: float | None = None  # T01 to the BMC's record of the power going off
    recovered_ms: float | None = None  # T01 to recovered in Vigil and every recovered instance answering
    instances_recovered: int = 0
    recovered: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> host, serving_ms, answered_ms
    double_active: int | None = None
    answers_after_fence: int | None = None  # answers from the failed host received after fence_confirmed
    two_hosts: int | None = None  # instances whose new process served before their old one's last answer
    requests_after_fence: int | None = None  # requests sent to the failed host's instances after the fence
    answers_after_t01: int | None = None  # answers from the failed host after it was declared lost
    last_answer_ms: float | None = None  # T01 to the failed host's last answer
    outage_ms: float | None = None  # service: longest run of unanswered requests, times the interval
    lost: int | None = None  # service: requests unanswered from the fault to the end
    checkpoints_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.double_active == 0
            and bool(self.instances)
            and self.instances_recovered == len(self.instances)
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "fence_ms": self.fence_ms,
            "recovered_ms": self.recovered_ms,
            "instances_recovered": self.instances_recovered,
            "double_active": self.double_active,
            "hosts": self.hosts,
            "host": self.host,
            "fault_kind": FAULT,
            "instances": self.instances,
            "recovered": self.recovered,
            "answers_after_fence": self.answers_after_fence,
            "two_hosts": self.two_hosts,
            "requests_after_fence": self.requests_after_fence,
            "answers_after_t01": self.answers_after_t01,
            "last_answer_ms": self.last_answer_ms,
            "power_off_ms": self.power_off_ms,
            "detection_ms": self.detection_ms,
            "notification_ms": self.notification_ms,
            "outage_ms": self.outage_ms,
            "lost": self.lost,
            "checkpoints_ms": self.checkpoints_ms,
            "fault": self.fault,
            "notes": self.notes,
            "error": self.error,
        }


def evacuation_policy(project: str = bed.DEFAULT_PROJECT) -> dict[str, Any]:
    """Vigil's ``recovery`` settings for the demo: the project's instances evacuated (``auto``)."""
    return {"projects": {project: {"action": "evacuate", "method": "auto"}}}


async def run_testbed_recovery_demo(
    hosts: int = MIN_TESTBED_HOSTS,
    *,
    workers: int | None = None,
    timeout_s: float = 60.0,
    rate: float = 500.0,
    state_dir: Path | None = None,
) -> TestbedRecoveryResult:
    """Bring a testbed up with fencing and evacuation, run the VNF, cut the active host's management network,
    watch the fence and the recovery, and take the testbed down again; see the module docstring."""
    if hosts < MIN_TESTBED_HOSTS:
        raise ValueError(f"the demo needs at least {MIN_TESTBED_HOSTS} hosts (the failed active must move somewhere)")
    result = TestbedRecoveryResult(hosts)
    missing = missing_tools(testbed=True)
    if missing:
        result.error = f"needs {', '.join(missing)} (make sysdeps installs fence-agents and ipmitool as root)"
        return result
    up = functools.partial(
        bed.up, hosts, state_dir, fencing=True, recovery=evacuation_policy(), timeout_s=max(timeout_s, 60.0)
    )
    try:
        state = await asyncio.to_thread(up)
    except (TestbedError, OSError, ValueError) as exc:
        result.error = f"cannot bring the testbed up: {exc}"
        return result
    try:
        reset = await clean_start(state)
        if reset:
            result.notes.append(f"reset {len(reset)} instance(s) a fault during the testbed's bring-up left in ERROR")
        app = AppOnTestbed(state, rate=rate, workers=2 * hosts if workers is None else workers, cloud_recovery=True)
        async with app:
            await _fail_and_recover(app, result, timeout_s)
    except (TestbedError, FleetError, TimeoutError, OSError, httpx.HTTPError) as exc:
        result.error = result.error or str(exc) or type(exc).__name__
    finally:
        await asyncio.to_thread(bed.down, state_dir)
    return result


async def _fail_and_recover(app: AppOnTestbed, result: TestbedRecoveryResult, timeout_s: float) -> None:
    assert app.vnfm is not None
    state, admin = app.state, app.admin
    failed = app.act_host()
    result.host = failed.name
    where = await _project_instances(admin, state.project)
    result.instances = sorted(i for i, x in where.items() if (x["host"], x["state"]) == (failed.name, "ACTIVE"))
    singles = {m.id for m in app.vnfm.members.values() if m.role is VnfRole.SINGLE}
    if not singles & set(result.instances):
        raise TestbedError(f"no non-redundant instance runs on {failed.name}: give the VNF more workers")
    targets: list[tuple[str, int]] = []
    for instance in result.instances:
        serving = await asyncio.to_thread(app.fleet.serving, instance)
        targets.append((failed.dc_ip, int(serving["port"])))
    out = state.dir / f"{HOST_PROBE}.out"
    argv = [state.python, "-m", "vigil.testbed.probe", "--rate", str(HOST_PROBE_RATE * len(targets))]
    argv += ["--timeout", str(PROBE_TIMEOUT_S), "--out", str(out)]
    for address, port in targets:
        argv += ["--target", f"{address}:{port}"]
    out.unlink(missing_ok=True)
    start_process(state.dir, HOST_PROBE, plan.GW_NS, argv)
    try:
        await _until_each_answered(out, len(targets), app.timeout_s)
        async with app.following():
            measured = await app.inject(FAULT)
            if measured.error is not None or measured.fault is None:
                result.error = measured.error or f"Vigil opened no fault of {failed.name}"
                return
            result.fault = measured.fault
            result.detection_ms, result.notification_ms = measured.detection_ms, measured.notification_ms
            checkpoints = await _recovered(app, result, timeout_s)
            fence_at = checkpoints["fence_confirmed"]
            await asyncio.sleep(max(0.0, fence_at + AFTER_FENCE_S - time.time()))
        end = time.time()
    finally:
        pid = pid_of(state.dir, HOST_PROBE)
        if pid is not None:
            await asyncio.to_thread(terminate, [pid])
    _double_active(result, read_samples(out), checkpoints, power_file(state.dir, failed.name).stat().st_mtime)
    window = await app.requests_between(measured.t00, end)
    result.outage_ms = round(window.longest_failures * 1000 / app.rate, 3)
    result.lost = window.failed
    if app.follow_errors:
        result.notes.append(f"workload re-sync failed {len(app.follow_errors)} time(s): {app.follow_errors[-1]}")


async def _project_instances(admin: httpx.AsyncClient, project: str) -> dict[str, dict[str, Any]]:
    response = await admin.get("/v1/instances", params={"project": project})
    return {str(i["id"]): i for i in response.raise_for_status().json()["instances"]}


async def _until_each_answered(out: Path, targets: int, timeout_s: float) -> None:
    """Until the probe of the failed host's instances has had an answer from each of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(FileNotFoundError):
            answered = {target_of(s.seq, targets) for s in read_samples(out) if s.ok}
            if len(answered) == targets:
                return
        if time.monotonic() > deadline:
            raise TimeoutError("the instances of the host to fail do not all answer the probe")
        await asyncio.sleep(0.05)


async def _recovered(app: AppOnTestbed, result: TestbedRecoveryResult, timeout_s: float) -> dict[str, float]:
    """Until Vigil has the ``recovered`` checkpoint and every instance it recovered has a process answering at
    its new host (or the fence failed, or the time is up). Fills the fence and recovery figures; returns the
    fault's checkpoints (Unix s)."""
    admin, failed = app.admin, result.host
    answered_at: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    gateway = socket_in(plan.GW_NS)  # the clients' side, as the probes
    gateway.setblocking(False)
    try:
        while True:
            response = await admin.get(f"/v1/faults/{result.fault}/profile")
            profile = response.raise_for_status().json()
            checkpoints: dict[str, float] = profile["checkpoints"]
            if "fence_failed" in checkpoints:
                raise TestbedError(f"the fence of {failed} failed: see its host.fence_failed alarm")
            where = await _project_instances(admin, app.state.project)
            elsewhere = {
                i: where[i]["host"]
                for i in result.instances
                if i in where and where[i]["state"] == "ACTIVE" and where[i]["host"] not in (None, failed)
            }
            for instance, host_name in elsewhere.items():
                host = plan.host_by_name(app.state.hosts, host_name)
                if instance in answered_at or app.fleet.hosts.get(instance) != host:
                    continue  # answered already, or the workload has not followed yet
                serving = await asyncio.to_thread(app.fleet.serving, instance)
                if await _answers(gateway, (host.dc_ip, int(serving["port"])), instance):
                    answered_at[instance] = time.time()
                    result.recovered[instance] = {"host": host_name, "serving_at": float(serving["at"])}
            if "recovered" in checkpoints and set(answered_at) == set(elsewhere):
                break
            if time.monotonic() > deadline:
                result.error = f"not recovered within {timeout_s} s (checkpoints: {sorted(checkpoints)})"
                break
            await asyncio.sleep(0.02)
    finally:
        gateway.close()
    t01 = checkpoints.get("T01")
    result.checkpoints_ms = {k: round(v, 3) for k, v in profile["ms_after_T01"].items()}
    result.fence_ms = result.checkpoints_ms.get("fence_confirmed")
    result.instances_recovered = len(answered_at)
    if t01 is not None:
        for instance, seen in result.recovered.items():
            seen["serving_ms"] = round((seen.pop("serving_at") - t01) * 1000, 3)
            seen["answered_ms"] = round((answered_at[instance] - t01) * 1000, 3)
        if "recovered" in checkpoints:
            done = max([checkpoints["recovered"], *answered_at.values()])
            result.recovered_ms = round((done - t01) * 1000, 3)
    if "fence_confirmed" not in checkpoints:
        raise TestbedError(f"{failed} was not fenced within {timeout_s} s")
    return checkpoints


async def _answers(sock: socket.socket, target: tuple[str, int], instance: str) -> bool:
    """Whether ``instance``'s process answers one request at ``target`` within :data:`CHECK_WAIT_S`."""
    loop = asyncio.get_running_loop()
    request = f"recovery-check {instance} {time.time():.6f}".encode()
    with contextlib.suppress(OSError):
        await loop.sock_sendto(sock, request, target)
    end = loop.time() + CHECK_WAIT_S
    while (left := end - loop.time()) > 0:
        try:
            data, peer = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), left)
        except TimeoutError:
            return False
        except OSError:
            continue
        if peer == target and data == request + b" " + instance.encode():
            return True
    return False


def _double_active(
    result: TestbedRecoveryResult, samples: list[Sample], checkpoints: dict[str, float], power_off_at: float
) -> None:
    """The failed host's answers after the fence, and instances answering from two hosts at once."""
    fence_at, t01 = checkpoints["fence_confirmed"], checkpoints["T01"]
    targets = len(result.instances)
    answers = [s for s in samples if s.ok and s.received is not None]
    last_old: dict[str, float] = {}
    for sample in answers:
        instance = result.instances[target_of(sample.seq, targets)]
        last_old[instance] = max(last_old.get(instance, 0.0), sample.received or 0.0)
    result.answers_after_fence = sum(1 for s in answers if (s.received or 0.0) > fence_at)
    result.requests_after_fence = sum(1 for s in samples if s.sent > fence_at)
    result.answers_after_t01 = sum(1 for s in answers if (s.received or 0.0) > t01)
    if last_old:
        result.last_answer_ms = round((max(last_old.values()) - t01) * 1000, 3)
    result.power_off_ms = round((power_off_at - t01) * 1000, 3)
    result.two_hosts = sum(
        1
        for instance, seen in result.recovered.items()
        if last_old.get(instance, 0.0) >= t01 + seen["serving_ms"] / 1000
    )
    result.double_active = result.answers_after_fence + result.two_hosts
