"""``vigil demo maintenance``: Doctor's NFVI maintenance test case, on one machine.

:func:`run_maintenance_demo` does what OPNFV's maintenance test (and
Fenix's) does against a real cloud, in one process and a scratch data
directory:

1. builds an embedded cloud (:func:`maintenance_topology`): N hosts of C
   vCPUs; the ``vnf-demo`` project with its ACT/STBY pair in an
   anti-affinity group (ACT on ``compute-1``, STBY on ``compute-2``) and
   non-redundant 1-vCPU instances filling the capacity. By default one
   host's worth of vCPUs stays free in all, spread so that every host holds
   instances: no host is empty, so Vigil has to empty one first
   (PREPARE_MAINTENANCE). With ``full`` every vCPU is used: no host can be
   emptied at all, so Vigil first asks the app to scale in (SCALE_IN);
2. runs Vigil in this process (:func:`vigil.wiring.running`) with its API
   on a loopback port, and the sample app manager
   (:class:`~vigil.consumer.app_manager.AppManager`) with its own webhook;
3. starts the :class:`ServiceProbe`, then, as the infrastructure admin,
   posts one session for every host with an ``upgrade`` action per host,
   and waits until it ends;
4. reports the session's end state, the hosts maintained, the migrations,
   and what the probe saw (requests, failed requests, longest outage).

The probe stands for the VNF's clients: the app is in service exactly
when its manager's current active instance runs (ACTIVE) on a host that is
not in maintenance, not forced down and reachable. It reads Vigil's resource
map directly, which is why Vigil runs in this process. Zero failed requests
is the use case's promise: the app manager moves its active role away
before the host it runs on is touched.

:func:`run_testbed_maintenance_demo` (``vigil demo maintenance --testbed``,
root needed) runs the same test on real network namespaces
(:mod:`vigil.testbed`): the app's instances are processes that follow their
migrations, the testbed's traffic probe sends real requests to the service
address, and each host's data plane really goes down while it is in
maintenance (:mod:`vigil.testbed.maintain`), so Vigil must suppress its
agent's reports rather than raise a fault.

:func:`minimum_migrations` and :func:`per_host` let the benchmark
(``bench.maintenance``) compare a run with what its layout makes
unavoidable.
"""

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml
from rich.table import Table

from vigil.api.app import create_app
from vigil.api.auth import Principal, Role, TokenRegistry, new_token
from vigil.api.deps import ApiContext
from vigil.consumer.app_manager import AppManager, MaintenanceStep
from vigil.consumer.manager import VnfManager
from vigil.consumer.webhook import running_consumer
from vigil.controller.resource_map import ResourceMap
from vigil.domain.callbacks import LOOPBACK
from vigil.domain.errors import DomainError
from vigil.domain.model import Host, Instance
from vigil.domain.states import InstanceState
from vigil.settings import Settings, load_settings
from vigil.testbed import bed, maintain, plan
from vigil.testbed.netns import TestbedError
from vigil.testbed.scenario import AppOnTestbed, clean_start
from vigil.testbed.workload import FleetError
from vigil.wiring import BackgroundServer, Runtime, running

DEMO_PROJECT = "vnf-demo"
GROUP = "vnf-demo-ha"
ACT_HOST, STBY_HOST = "compute-1", "compute-2"
MIN_HOSTS = 3
"""Two hosts cannot be maintained under an anti-affinity pair: whichever is
emptied first, its member of the pair has nowhere to go but the other's host."""

PROBE_INTERVAL_S = 0.005  # 200 requests per second
FINAL_STATES = ("MAINTENANCE_DONE", "MAINTENANCE_FAILED")


def host_names(hosts: int) -> list[str]:
    return [f"compute-{h}" for h in range(1, hosts + 1)]


def fill(hosts: int, vcpus: int, *, full: bool) -> dict[str, int]:
    """How many 1-vCPU instances each host holds: one host's worth of vCPUs free
    in all (or none with ``full``), spread as evenly as it goes so no host is empty."""
    if hosts < MIN_HOSTS:
        raise ValueError(f"the demo needs at least {MIN_HOSTS} hosts (an anti-affinity pair must move somewhere)")
    if vcpus < 2:
        raise ValueError("the demo needs at least 2 vCPUs per host, so every host can hold instances")
    used = hosts * vcpus if full else (hosts - 1) * vcpus
    base, extra = divmod(used, hosts)
    return {name: base + (1 if n < extra else 0) for n, name in enumerate(host_names(hosts))}


def maintenance_topology(hosts: int, vcpus: int = 4, *, full: bool = False) -> dict[str, Any]:
    """The demo cloud, as a topology document (see the module docstring)."""
    counts = fill(hosts, vcpus, full=full)
    instances: list[dict[str, Any]] = [
        {
            "id": "vnf-demo-act",
            "name": "app-act",
            "project": DEMO_PROJECT,
            "group": GROUP,
            "host": ACT_HOST,
            "metadata": {"role": "ACT"},
        },
        {
            "id": "vnf-demo-stby",
            "name": "app-stby",
            "project": DEMO_PROJECT,
            "group": GROUP,
            "host": STBY_HOST,
            "metadata": {"role": "STBY"},
        },
    ]
    worker = 0
    for name, count in counts.items():
        for _ in range(count - (1 if name in (ACT_HOST, STBY_HOST) else 0)):
            worker += 1
            instances.append(
                {
                    "id": f"vnf-demo-w{worker:04d}",
                    "name": f"app-worker-{worker}",
                    "project": DEMO_PROJECT,
                    "host": name,
                    "metadata": {"role": "worker"},
                }
            )
    return {
        "hosts": [{"name": name, "zone": "az-1", "vcpus": vcpus} for name in counts],
        "projects": [{"id": DEMO_PROJECT, "name": "Demo VNF"}],
        "server_groups": [{"id": GROUP, "name": "app-ha", "project": DEMO_PROJECT, "policy": "anti-affinity"}],
        "instances": instances,
    }


def per_host(cloud_map: ResourceMap, hosts: Iterable[str]) -> dict[str, int]:
    """Instances running on each host (a migrating one counts where it runs)."""
    return {h: sum(1 for i in cloud_map.instances_on(h) if i.host == h) for h in hosts}


def minimum_migrations(layout: Mapping[str, int]) -> int:
    """The fewest migrations that can maintain every host of ``layout`` one at a time.

    Every instance has to leave its host once. When no host is empty, the
    first host is emptied while no host is maintained yet, so its instances
    land on hosts still to be maintained and move a second time: at best that
    first host is the one with the fewest instances.
    """
    counts = list(layout.values())
    if not counts:
        return 0
    return sum(counts) + (min(counts) if all(counts) else 0)


class Inventory(Protocol):
    """What the probe reads of the resource map."""

    def instance(self, ident: str) -> Instance: ...

    def host(self, name: str) -> Host: ...


class ServiceProbe:
    """The VNF's clients: one request every ``interval_s`` (200/s by default).

    A request succeeds when :meth:`serving` holds. The schedule is fixed from
    the start (tick n is due at start + n x interval), so it does not drift;
    ticks that fall due while the event loop is busy elsewhere are taken as
    soon as it returns, against the state of the moment, which is the state
    they would have seen (nothing changes while the loop is busy elsewhere).
    """

    def __init__(
        self,
        cloud_map: Inventory,
        active: Callable[[], str | None],
        *,
        interval_s: float = PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the probe's interval must be positive")
        self._map = cloud_map
        self._active = active
        self.interval_s = interval_s
        self._clock = clock
        self.requests = 0
        self.failures = 0
        self.longest_failures = 0  # consecutive failed requests
        self.outages: list[tuple[float, float]] = []  # (s after start, ms), the first 100
        self._run = 0
        self._started: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def longest_outage_ms(self) -> float:
        return round(self.longest_failures * self.interval_s * 1000, 3)

    @property
    def duration_s(self) -> float:
        return round(self.requests * self.interval_s, 3)

    def serving(self) -> bool:
        """Whether a request sent now gets an answer from the app's active instance."""
        ident = self._active()
        if ident is None:
            return False
        try:
            inst = self._map.instance(ident)
            if inst.state is not InstanceState.ACTIVE or inst.host is None:
                return False
            host = self._map.host(inst.host)
        except DomainError:  # deleted, or its host is gone
            return False
        # An admin-disabled host still runs what it runs; only these stop the service.
        return not host.in_maintenance and not host.forced_down and host.reachable

    def _take(self, ok: bool) -> None:
        self.requests += 1
        if ok:
            self._end_run()
            return
        self.failures += 1
        self._run += 1
        self.longest_failures = max(self.longest_failures, self._run)

    def _end_run(self) -> None:
        if self._run and len(self.outages) < 100:
            started = (self.requests - 1 - self._run) * self.interval_s
            self.outages.append((round(started, 3), round(self._run * self.interval_s * 1000, 3)))
        self._run = 0

    def _catch_up(self) -> None:
        assert self._started is not None
        due = int((self._clock() - self._started) / self.interval_s) + 1
        while self.requests < due:
            self._take(self.serving())

    async def _loop(self) -> None:
        assert self._started is not None
        while True:
            self._catch_up()
            next_at = self._started + self.requests * self.interval_s
            await asyncio.sleep(max(0.0, next_at - self._clock()))

    def start(self) -> None:
        self._started = self._clock()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="vigil.demo.probe")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        self._catch_up()
        self._end_run()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["ServiceProbe"]:
        self.start()
        try:
            yield self
        finally:
            await self.stop()


@dataclass(slots=True)
class MaintenanceDemoResult:
    hosts: int
    full: bool
    session_id: str | None = None
    state: str | None = None
    reason: str | None = None
    hosts_maintained: int = 0
    migrations: int = 0
    layout: dict[str, int] = field(default_factory=dict)  # instances per host before the session
    planned_layout: dict[str, int] = field(default_factory=dict)  # the same once the app scaled in (if it did)
    scale_in: int = 0  # instances the app manager removed when asked to scale in
    switchovers: int = 0  # times the app manager moved its active role away
    probe_interval_s: float = PROBE_INTERVAL_S
    requests: int = 0
    failed_requests: int = 0
    longest_outage_ms: float = 0.0
    outages: list[tuple[float, float]] = field(default_factory=list)
    duration_s: float | None = None  # the session's, created → its final state
    app_log: list[str] = field(default_factory=list)
    app_steps: list[str] = field(default_factory=list)
    error: str | None = None
    probe: str = "embedded"  # or "testbed": the testbed's traffic probe (run_testbed_maintenance_demo)
    faults_opened: int | None = None  # testbed: faults Vigil opened during the session
    suppressed_reports: int | None = None  # testbed: agents' reports suppressed (host in maintenance)
    notes: list[str] = field(default_factory=list)  # what else happened (testbed: bring-up, workload)

    @property
    def ok(self) -> bool:
        return self.state == "MAINTENANCE_DONE" and self.failed_requests == 0 and self.error is None

    @property
    def minimum_migrations(self) -> int:
        return minimum_migrations(self.planned_layout or self.layout)

    def as_json(self) -> dict[str, Any]:
        return {
            "hosts_maintained": self.hosts_maintained,
            "migrations": self.migrations,
            "failed_requests": self.failed_requests,
            "duration_s": self.duration_s,
            "state": self.state,
            "hosts": self.hosts,
            "full": self.full,
            "session_id": self.session_id,
            "reason": self.reason,
            "minimum_migrations": self.minimum_migrations,
            "scale_in": self.scale_in,
            "switchovers": self.switchovers,
            "requests": self.requests,
            "probe_interval_ms": round(self.probe_interval_s * 1000, 3),
            "longest_outage_ms": self.longest_outage_ms,
            "layout": self.layout,
            "probe": self.probe,
            "faults_opened": self.faults_opened,
            "suppressed_reports": self.suppressed_reports,
            "notes": self.notes,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class DemoSetup:
    """The cloud and its timings (seconds)."""

    hosts: int = 4
    vcpus: int = 4
    full: bool = False
    migration_s: float = 0.2
    upgrade_s: float = 0.3
    reply_window_s: float = 10.0

    @property
    def expected_s(self) -> float:
        """A generous guess of the session's length, for its timeout."""
        return self.hosts * (self.upgrade_s + 2 * self.migration_s + 0.5)


def demo_settings(setup: DemoSetup, data_dir: Path) -> Settings:
    topology = data_dir / "maintenance-cloud.yaml"
    document = maintenance_topology(setup.hosts, setup.vcpus, full=setup.full)
    topology.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_settings(
        None,
        data_dir=data_dir,
        store={"url": f"sqlite+aiosqlite:///{data_dir / 'vigil.db'}"},
        auth={"tokens_file": data_dir / "tokens.yaml"},
        cloud={
            "topology": topology,
            "cold_migration_s": setup.migration_s,
            "live_migration_s": setup.migration_s,
        },
        maintenance={
            "reply_window_s": setup.reply_window_s,
            "migration_timeout_s": max(10.0, 20 * setup.migration_s),
        },
        monitor={"listen": "off"},  # no fault comes in; never take UDP 8771 from a Vigil here
        notifier={"allowed_callback_networks": list(LOOPBACK)},  # the app manager listens on loopback
    )


@contextlib.asynccontextmanager
async def serving(runtime: Runtime, tokens: TokenRegistry) -> AsyncIterator[BackgroundServer]:
    """The API of an already running Vigil on a loopback port, so the caller keeps
    the runtime's objects (the probe reads its resource map)."""

    @contextlib.asynccontextmanager
    async def context() -> AsyncIterator[ApiContext]:
        yield runtime.api_context(tokens)

    app = create_app(context, max_body_bytes=runtime.settings.server.max_body_bytes)
    server = BackgroundServer(app)  # messages' reply_url: the root the session's request came to, this server
    async with server:
        yield server


async def run_maintenance_demo(
    setup: DemoSetup | None = None,
    *,
    timeout_s: float | None = None,
    data_dir: Path | None = None,
    probe_interval_s: float = PROBE_INTERVAL_S,
) -> MaintenanceDemoResult:
    """Build, serve, start the app manager and the probe, maintain every host; see the module docstring."""
    setup = setup or DemoSetup()
    result = MaintenanceDemoResult(setup.hosts, setup.full, probe_interval_s=probe_interval_s)
    timeout_s = timeout_s if timeout_s is not None else 30.0 + 3 * setup.expected_s
    hosts = host_names(setup.hosts)
    fill(setup.hosts, setup.vcpus, full=setup.full)  # refuse a bad setup before building anything
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-maintenance-")))
        settings = demo_settings(setup, data_dir)
        admin, member = new_token(), new_token()
        tokens = TokenRegistry({admin: Principal("admin", Role.ADMIN), member: Principal(DEMO_PROJECT, Role.MEMBER)})
        async with running(settings) as runtime, serving(runtime, tokens) as server:
            if runtime.maintenance is None:
                result.error = "this Vigil runs no maintenance service"
                return result
            cloud_map = runtime.cloud.map
            app: list[VnfManager] = []  # the app manager, once running_consumer has started it

            def on_event(line: str) -> None:
                result.app_log.append(line)
                # Vigil plans on the layout the app leaves after scaling in: note it then.
                if app and isinstance(app[0], AppManager) and app[0].scaled_in and not result.planned_layout:
                    result.planned_layout = per_host(cloud_map, hosts)
                    result.scale_in = len(app[0].scaled_in)

            async with (
                running_consumer(server.url, member, project=DEMO_PROJECT, maintenance=True, on_event=on_event) as (
                    manager,
                    _,
                ),
                httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": admin}, timeout=10.0) as adm,
            ):
                app.append(manager)
                result.layout = per_host(cloud_map, hosts)

                def active() -> str | None:
                    act = manager.act
                    return act.id if act is not None else None

                probe = ServiceProbe(cloud_map, active, interval_s=probe_interval_s)
                body = session_body(hosts, [{"action": "upgrade", "duration_s": setup.upgrade_s}])
                async with probe.running():
                    await _maintain(adm, body, runtime.maintenance.wait, timeout_s, result)
                    with contextlib.suppress(TimeoutError):  # the app's last reply may still be on its way
                        await manager.settle(5.0)
                result.requests = probe.requests
                result.failed_requests = probe.failures
                result.longest_outage_ms = probe.longest_outage_ms
                result.outages = list(probe.outages)
                result.switchovers = len(manager.switchovers)
                if isinstance(manager, AppManager):
                    result.app_steps = [_step_line(s) for s in manager.maintenance]
    return result


def _step_line(step: MaintenanceStep) -> str:
    return f"{step.state}: {step.reply or '-'}" + (f" ({step.error})" if step.error else "")


def session_body(hosts: list[str], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """The admin's request for a session maintaining ``hosts`` with ``actions`` on each."""
    return {
        "hosts": hosts,
        "state": "MAINTENANCE",
        "metadata": {"origin": "vigil demo maintenance"},
        "actions": actions,
    }


async def _maintain(
    admin: httpx.AsyncClient,
    body: dict[str, Any],
    wait: Callable[[str], Awaitable[object]],
    timeout_s: float,
    result: MaintenanceDemoResult,
) -> None:
    """Post the session as the admin, ``wait`` for its end, read its outcome back through the API."""
    created = await admin.post("/v1/maintenance", json=body)
    if created.status_code != 200:
        result.error = f"the session was refused: {created.status_code} {created.text}"
        return
    ident = str(created.json()["session_id"])
    result.session_id = ident
    try:
        async with asyncio.timeout(timeout_s):
            await wait(ident)
    except TimeoutError:
        result.error = f"the session did not end within {timeout_s:g} s; cancelled"
        await admin.delete(f"/v1/maintenance/{ident}")
    session = (await admin.get(f"/v1/maintenance/{ident}")).raise_for_status().json()
    detail = (await admin.get(f"/v1/maintenance/{ident}/detail")).raise_for_status().json()
    result.state = session["state"]
    result.reason = session["reason"]
    result.migrations = session["migrations"]
    result.hosts_maintained = sum(1 for h in detail["hosts"] if h["maintained"])
    if session["state"] in FINAL_STATES:
        created_at, ended_at = (_timestamp(session[k]) for k in ("created_at", "updated_at"))
        result.duration_s = round(ended_at - created_at, 3)


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def result_table(result: MaintenanceDemoResult, setup: DemoSetup) -> Table:
    """The embedded demo's outcome, or with ``result.probe == "testbed"`` the testbed's
    (``setup.upgrade_s`` is then how long each host's data plane was down)."""
    testbed = result.probe == "testbed"
    if testbed:
        kind = "network namespaces, each host's data plane down while maintained"
    else:
        kind = "every vCPU used: SCALE_IN first" if result.full else "one host's worth of vCPUs free"
    table = Table(title=f"Rolling maintenance of {result.hosts} hosts ({kind})")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("session state", str(result.state))
    if result.reason:
        table.add_row("reason", result.reason)
    table.add_row("hosts maintained", f"{result.hosts_maintained} / {result.hosts}")
    counts = list(result.layout.values()) or [0]
    table.add_row("instances before", f"{sum(counts)} ({min(counts)}-{max(counts)} per host)")
    if result.scale_in:
        table.add_row("scaled in by the app", str(result.scale_in))
    table.add_row("migrations (fewest possible)", f"{result.migrations} ({result.minimum_migrations})")
    table.add_row("ACT moved away by the app", str(result.switchovers))
    table.add_row("session duration", "-" if result.duration_s is None else f"{result.duration_s:.3f} s")
    if testbed:
        table.add_row("data plane down per host", f"{setup.upgrade_s:g} s")
        table.add_row("faults opened (reports suppressed)", f"{result.faults_opened} ({result.suppressed_reports})")
    else:
        table.add_row("migration, upgrade", f"{setup.migration_s:g} s, {setup.upgrade_s:g} s")
    table.add_section()
    where = "testbed's probe, " if testbed else ""
    table.add_row(f"requests ({where}every {result.probe_interval_s * 1000:g} ms)", str(result.requests))
    table.add_row("failed requests", str(result.failed_requests))
    table.add_row("longest outage", f"{result.longest_outage_ms:.3f} ms")
    return table


# -- vigil demo maintenance --testbed: on real namespaces ------------------------------

TESTBED_RATE = 500.0  # the probe's requests per second (at least 200)


async def run_testbed_maintenance_demo(
    hosts: int = 4,
    *,
    workers: int | None = None,
    down_s: float = 1.0,
    rate: float = TESTBED_RATE,
    timeout_s: float | None = None,
    state_dir: Path | None = None,
) -> MaintenanceDemoResult:
    """The same test on a testbed (root needed), brought up and taken down again.

    The app runs as processes in the hosts' namespaces (:class:`AppOnTestbed`
    with ``maintenance``: the sample app manager, its ACT/STBY pair and
    ``workers`` non-redundant instances, by default two per host, spread by
    Vigil's scheduler), and the testbed's traffic probe sends ``rate``
    requests per second to its service address from the gateway. The admin
    maintains every host with the :mod:`vigil.testbed.maintain` action: the
    host's data-plane NIC is down for ``down_s`` while it is in maintenance.
    The workload follows Vigil during the session (migrated instances'
    processes move). Reported: the session's outcome as in the embedded
    demo, the probe's requests and failures sent during the session, the
    faults Vigil opened meanwhile (none: the agents' link-down reports of a
    host in maintenance are suppressed) and how many reports it suppressed.
    """
    if hosts < MIN_HOSTS:
        raise ValueError(f"the demo needs at least {MIN_HOSTS} hosts (an anti-affinity pair must move somewhere)")
    result = MaintenanceDemoResult(hosts, full=False, probe_interval_s=1.0 / rate, probe="testbed")
    try:
        state = await asyncio.to_thread(bed.up, hosts, state_dir, timeout_s=60.0)
    except (TestbedError, OSError, ValueError) as exc:
        result.error = f"cannot bring the testbed up: {exc}"
        return result
    try:
        reset = await clean_start(state)
        app = AppOnTestbed(state, rate=rate, maintenance=True, workers=2 * hosts if workers is None else workers)
        if reset:
            result.notes.append(f"reset {len(reset)} instance(s) a fault during the testbed's bring-up left in ERROR")
        async with app:
            await _maintain_testbed(app, down_s, timeout_s, result)
    except (TestbedError, FleetError, TimeoutError, OSError, httpx.HTTPError) as exc:
        result.error = result.error or str(exc) or type(exc).__name__
    finally:
        await asyncio.to_thread(bed.down, state_dir)
    return result


async def _maintain_testbed(
    app: AppOnTestbed, down_s: float, timeout_s: float | None, result: MaintenanceDemoResult
) -> None:
    assert app.vnfm is not None
    vnfm, admin = app.vnfm, app.admin
    names = [h.name for h in plan.hosts(app.state.hosts)]
    result.layout = await _testbed_layout(admin, app.state.project, names)
    faults_before = await _fault_ids(admin)
    body = session_body(names, [maintain.action(down_s)])
    timeout_s = timeout_s if timeout_s is not None else 60.0 + len(names) * (down_s + 15.0)

    async def ended(ident: str) -> None:  # Vigil runs in another process: ask it every 50 ms
        while True:
            session = (await admin.get(f"/v1/maintenance/{ident}")).raise_for_status().json()
            if session["state"] in FINAL_STATES:
                return
            await asyncio.sleep(0.05)

    async with app.following():
        start = time.time()
        await _maintain(admin, body, ended, timeout_s, result)
        end = time.time()
        with contextlib.suppress(TimeoutError):  # the app's last reply may still be on its way
            await vnfm.settle(5.0)
    window = await app.requests_between(start, end)
    result.requests, result.failed_requests = window.requests, window.failed
    result.longest_outage_ms = round(window.longest_failures * result.probe_interval_s * 1000, 3)
    result.faults_opened = len(await _fault_ids(admin) - faults_before)
    result.suppressed_reports = await _suppressed_since(admin, start)
    result.switchovers = len(vnfm.switchovers)
    result.app_log = list(app.log)
    if isinstance(vnfm, AppManager):
        result.app_steps = [_step_line(s) for s in vnfm.maintenance]
    if app.follow_errors:
        result.notes.append(f"workload re-sync failed {len(app.follow_errors)} time(s): {app.follow_errors[-1]}")


async def _testbed_layout(admin: httpx.AsyncClient, project: str, hosts: list[str]) -> dict[str, int]:
    response = await admin.get("/v1/instances", params={"project": project})
    instances = response.raise_for_status().json()["instances"]
    return {h: sum(1 for i in instances if i["host"] == h and i["state"] == "ACTIVE") for h in hosts}


async def _fault_ids(admin: httpx.AsyncClient) -> set[str]:
    return {str(f["id"]) for f in (await admin.get("/v1/faults")).raise_for_status().json()["faults"]}


async def _suppressed_since(admin: httpx.AsyncClient, since: float) -> int:
    response = await admin.get("/v1/fault-events", params={"outcome": "suppressed", "limit": 1000})
    events = response.raise_for_status().json()["fault_events"]
    return sum(1 for e in events if _timestamp(e["received_at"]) >= since)
