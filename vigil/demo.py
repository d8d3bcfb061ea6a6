"""``vigil demo fault``: Doctor's fault management test case, on one machine.

:func:`run_fault_demo` does what OPNFV's ``doctor-test`` does against a
real cloud, in one process and a scratch data directory:

1. builds an embedded cloud: four hosts on two racks, the ``vnf-demo``
   project with its ACT/STBY pair in an anti-affinity group (ACT on
   ``compute-1``, STBY on ``compute-2``) and ``N`` instances in all on
   ``compute-1``, plus another tenant's instances;
2. runs Vigil's API server on a loopback port (SQLite store, in-process
   engines) and the sample VNF manager (``vigil.consumer``) with its own
   webhook server, subscribed to its instances;
3. injects the failure of ``compute-1``: a monitor reports
   ``compute.host.down`` with ``injected_at`` (T00) and the detection time
   (T01);
4. waits until the VNF manager has the notification and has switched its
   standby to active, takes the fault's Doctor profile (T00..T09), and
   waits for the failed instances to be recreated.

:func:`checkpoint_table` renders the profile for people and
:meth:`FaultDemoResult.as_json` for programs (``--json``).

:func:`run_testbed_demo` (``vigil demo fault --testbed``, root needed) runs
the same test on real network namespaces (:mod:`vigil.testbed`): the VNF's
instances are processes serving a probe client, the fault is the active
host's data-plane link going down, and it reports detection (T01 - T00),
notification (T09 - T01) and the service outage the probe saw.
"""

import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.table import Table

from vigil.api.auth import Principal, Role, TokenRegistry, new_token
from vigil.consumer.webhook import running_consumer
from vigil.domain.callbacks import LOOPBACK
from vigil.settings import load_settings
from vigil.testbed import bed
from vigil.testbed.netns import TestbedError
from vigil.testbed.scenario import AppOnTestbed, Measured
from vigil.wiring import BackgroundServer, create_server_app

DEMO_PROJECT = "vnf-demo"
FAILED_HOST = "compute-1"

CHECKPOINTS = {
    "T00": "fault injected",
    "T01": "detected (monitor's event time)",
    "T02": "affected resources found",
    "T03": "instances set to ERROR",
    "T04": "host marked down",
    "T05": "notifier: alarms matched",
    "T06": "notifier: notifications rendered",
    "T07": "notifier: first notification sent",
    "T08": "notifier: last delivery answered",
    "T09": "consumer received",
}


@dataclass(slots=True)
class FaultDemoResult:
    instances: int
    payload_format: str
    fault: str | None = None
    notified: bool = False
    checkpoints_ms: dict[str, float] = field(default_factory=dict)
    notification_ms: float | None = None
    switchover_ms: float | None = None
    recreated_ms: float | None = None
    recreated: int = 0
    consumer_log: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "notification_ms": self.notification_ms,
            "checkpoints_ms": self.checkpoints_ms,
            "switchover_ms": self.switchover_ms,
            "recreated_ms": self.recreated_ms,
            "recreated": self.recreated,
            "notified": self.notified,
            "format": self.payload_format,
            "fault": self.fault,
            "error": self.error,
        }


def demo_topology(instances: int) -> dict[str, Any]:
    """The demo cloud: ``instances`` of vnf-demo's instances on compute-1, the ACT among them."""
    if instances < 1:
        raise ValueError("the demo needs at least one instance on the failed host")
    vcpus = max(8, 2 * instances + 4)
    workers = [
        {"name": f"vnf-demo-vm-{n:03d}", "project": DEMO_PROJECT, "host": FAILED_HOST, "metadata": {"role": "worker"}}
        for n in range(1, instances)
    ]
    return {
        "switches": [{"name": "tor-1"}, {"name": "tor-2"}],
        "hosts": [
            {
                "name": f"compute-{h}",
                "zone": f"az-{(h - 1) // 2 + 1}",
                "switch": f"tor-{(h - 1) // 2 + 1}",
                "vcpus": vcpus,
            }
            for h in range(1, 5)
        ],
        "projects": [{"id": DEMO_PROJECT, "name": "Demo VNF"}, {"id": "other", "name": "Another tenant"}],
        "server_groups": [{"id": "vnf-demo-ha", "name": "app-ha", "project": DEMO_PROJECT}],
        "instances": [
            {
                "id": "vnf-demo-act",
                "name": "app-act",
                "project": DEMO_PROJECT,
                "group": "vnf-demo-ha",
                "host": FAILED_HOST,
                "metadata": {"role": "ACT"},
            },
            {
                "id": "vnf-demo-stby",
                "name": "app-stby",
                "project": DEMO_PROJECT,
                "group": "vnf-demo-ha",
                "host": "compute-2",
                "metadata": {"role": "STBY"},
            },
            *workers,
            {"name": "vnf-demo-db", "project": DEMO_PROJECT, "host": "compute-3", "metadata": {"role": "worker"}},
            {"name": "other-vm-1", "project": "other", "host": FAILED_HOST},
            {"name": "other-vm-2", "project": "other", "host": "compute-4"},
        ],
    }


async def run_fault_demo(
    instances: int, payload_format: str = "aodh", *, timeout_s: float = 10.0, data_dir: Path | None = None
) -> FaultDemoResult:
    """Build, serve, subscribe, inject, measure; see the module docstring."""
    result = FaultDemoResult(instances, payload_format)
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-demo-")))
        topology = data_dir / "demo-cloud.yaml"
        topology.write_text(yaml.safe_dump(demo_topology(instances), sort_keys=False))
        settings = load_settings(
            None,
            data_dir=data_dir,
            store={"url": f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}"},
            auth={"tokens_file": data_dir / "tokens.yaml"},
            cloud={"topology": topology},
            monitor={"listen": "off"},  # the demo reports its fault itself; never take UDP 8771 from a Vigil here
            notifier={"allowed_callback_networks": list(LOOPBACK)},  # the VNF manager listens on loopback
        )
        admin, monitor, member = new_token(), new_token(), new_token()
        tokens = TokenRegistry(
            {
                admin: Principal("admin", Role.ADMIN),
                monitor: Principal("monitoring", Role.MONITOR),
                member: Principal(DEMO_PROJECT, Role.MEMBER),
            }
        )
        async with (
            BackgroundServer(create_server_app(settings, tokens)) as server,
            running_consumer(
                server.url,
                member,
                project=DEMO_PROJECT,
                payload_format=payload_format,
                on_event=result.consumer_log.append,
            ) as (vnfm, _),
            httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": monitor}, timeout=timeout_s) as mon,
            httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": admin}, timeout=timeout_s) as adm,
        ):
            await mon.get("/healthz")  # the monitor's connection is open before the fault, as a real one's is
            await _inject(mon, result)
            if result.fault is None:
                return result
            try:
                await vnfm.wait_for(lambda m: bool(m.notifications), timeout_s)
            except TimeoutError:
                result.error = f"the VNF manager got no notification within {timeout_s} s"
                return result
            result.notified = True
            with contextlib.suppress(TimeoutError):
                await vnfm.wait_for(lambda m: bool(m.switchovers), timeout_s)
            profile = await _profile(adm, result.fault, timeout_s)
            result.checkpoints_ms = profile.get("ms_after_T01", {})
            result.notification_ms = profile.get("notification_ms")
            base = profile.get("checkpoints", {}).get("T01")
            if vnfm.switchovers and base is not None:
                result.switchover_ms = round((vnfm.switchovers[0].at - base) * 1000, 3)
            with contextlib.suppress(TimeoutError):
                await vnfm.settle(timeout_s)
            done = [r for r in vnfm.recreations if r.active_at is not None]
            result.recreated = len(done)
            if done and base is not None:
                result.recreated_ms = round((max(r.active_at or 0 for r in done) - base) * 1000, 3)
    return result


async def _inject(monitor: httpx.AsyncClient, result: FaultDemoResult) -> None:
    injected_at = time.time()  # T00: the demo "pulls the cable" here
    detected = datetime.now(UTC)  # T01: and its monitor sees it at once
    details = {
        "hostname": FAILED_HOST,
        "status": "down",
        "monitor": "vigil-demo",
        "monitor_event_id": f"demo-{injected_at:.6f}",
        "injected_at": injected_at,
    }
    event = {"time": detected.isoformat(), "type": "compute.host.down", "details": details}
    response = await monitor.post("/v1/event", json=event)
    if response.status_code != 200:
        result.error = f"the event was refused: {response.status_code} {response.text}"
        return
    result.fault = response.json()["event"]["fault"]


async def _profile(admin: httpx.AsyncClient, fault: str, timeout_s: float) -> dict[str, Any]:
    """The fault's profile once T09 is in (Vigil stores it when the consumer's answer arrives)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await admin.get(f"/v1/faults/{fault}/profile")
        response.raise_for_status()
        profile: dict[str, Any] = response.json()
        if "T09" in profile.get("checkpoints", {}) or time.monotonic() > deadline:
            return profile
        await asyncio.sleep(0.01)


def checkpoint_table(result: FaultDemoResult) -> Table:
    table = Table(title=f"Doctor profile of the failure of {FAILED_HOST} ({result.instances} instances on it)")
    table.add_column("checkpoint")
    table.add_column("meaning")
    table.add_column("ms after T01", justify="right")
    for name, meaning in CHECKPOINTS.items():
        at = result.checkpoints_ms.get(name)
        table.add_row(name, meaning, "-" if at is None else f"{at:.3f}")
    table.add_section()
    table.add_row("step 9", "VNF manager switched its STBY to ACT", _ms(result.switchover_ms))
    table.add_row("step 10", f"failed instances recreated and ACTIVE ({result.recreated})", _ms(result.recreated_ms))
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# -- vigil demo fault --testbed: the same test on real namespaces ----------------------


@dataclass(slots=True)
class TestbedDemoResult:
    """Doctor's fault test on the testbed: the three figures, and what they came from."""

    __test__ = False  # not a pytest test class

    hosts: int
    measured: Measured | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.measured is not None and self.measured.complete

    def as_json(self) -> dict[str, float | None]:
        m = self.measured
        return {
            "detection_ms": m.detection_ms if m else None,
            "notification_ms": m.notification_ms if m else None,
            "outage_ms": m.outage_ms if m else None,
        }


async def run_testbed_demo(
    hosts: int = 3,
    payload_format: str = "aodh",
    *,
    timeout_s: float = 10.0,
    rate: float = 500.0,
    state_dir: Path | None = None,
) -> TestbedDemoResult:
    """Bring a testbed up, run the ACT/STBY app on it, take the ACT host's data-plane
    link down, measure, and take the testbed down again (see :mod:`vigil.testbed.scenario`)."""
    result = TestbedDemoResult(hosts)
    try:
        state = await asyncio.to_thread(bed.up, hosts, state_dir, timeout_s=max(timeout_s, 30.0))
    except (TestbedError, OSError, ValueError) as exc:
        result.error = f"cannot bring the testbed up: {exc}"
        return result
    try:
        async with AppOnTestbed(state, rate=rate, payload_format=payload_format, timeout_s=timeout_s) as app:
            result.measured = await app.inject("link-down")
            result.error = result.measured.error
    except (TestbedError, TimeoutError, OSError, httpx.HTTPError) as exc:
        result.error = str(exc)
    finally:
        await asyncio.to_thread(bed.down, state_dir)
    if result.error is None and not result.ok:
        result.error = "a figure is missing"
    return result


def table_of_testbed_demo(result: TestbedDemoResult) -> Table:
    m = result.measured
    title = f"Data-plane link of {m.host if m else 'the active host'} down, on a testbed of {result.hosts} hosts"
    table = Table(title=title)
    table.add_column("checkpoint")
    table.add_column("meaning")
    table.add_column("ms after T00", justify="right")
    table.add_row("T00", "link set down (ioctl in the host's namespace)", "0.000")
    for name, meaning in CHECKPOINTS.items():
        if name != "T00":
            table.add_row(name, meaning, _ms(m.checkpoints.get(name) if m else None))
    table.add_section()
    table.add_row("step 9", "VNF manager switched its STBY to ACT", _ms(m.switchover_ms if m else None))
    table.add_section()
    table.add_row("detection", "T01 - T00", _ms(m.detection_ms if m else None))
    table.add_row("notification", "T09 - T01", _ms(m.notification_ms if m else None))
    table.add_row("service outage", "probe: last answer before to first after", _ms(m.outage_ms if m else None))
    return table
