"""The ACT/STBY app on a testbed, its faults measured end to end.

:class:`AppOnTestbed` runs, around a testbed that is up:

* the sample VNF manager (:mod:`vigil.consumer`) of the testbed's project,
  in this process, its webhook on the root end of the controller's API
  link (``198.18.1.1``), with ``on_switchover`` wired to the workload;
* the workload (:class:`~vigil.testbed.workload.Fleet`): one instance
  process per member of the VNF, in the namespace of the host Vigil placed
  it on, the active one holding the service address;
* the probe (:mod:`.probe`) in the gateway's namespace, sending requests
  to the service address at a steady rate.

:meth:`AppOnTestbed.inject` breaks the active instance's host (by default
its data-plane link), waits for the VNF manager's switchover and for the
probe's first answered request after the fault, and reads the fault's
Doctor profile from Vigil: ``detection_ms`` is T01 - T00 (T00 from the
injector, T01 the agent's event time), ``notification_ms`` T09 - T01, and
``outage_ms`` the probe's outage. :meth:`AppOnTestbed.repair` waits for
the VNF manager's recreation of what failed, moves the workload after it,
repairs the host and waits until Vigil has it UP and the service answers
steadily, so the next fault starts from the same kind of state.

With ``maintenance=True`` the VNF manager is the sample app manager
(:class:`~vigil.consumer.app_manager.AppManager`), which takes part in
maintenance sessions, and ``workers`` non-redundant instances give the
session something to migrate. :meth:`AppOnTestbed.following` keeps the
workload in step with Vigil meanwhile: every 50 ms, and at once on each
INSTANCE_ACTION_DONE, one process per ACTIVE member on the host Vigil has
it on (a migrated instance's process stops on the old host and starts on
the new). The active instance is never migrated: the app manager moves
the role away first, and the new active claims the service address
before the old one releases it (make before break, :data:`HANDOVER_S`
later), so no request is lost. :meth:`ProbeLog.window` counts the probe's
requests and failures between two times.

With ``cloud_recovery=True`` the cloud recovers what fails (the project's
recovery policy is ``evacuate``: Vigil fences the failed host, then rebuilds
its instances elsewhere, same ids): the VNF manager switches over and
recreates nothing, and the workload, while :meth:`~AppOnTestbed.following`,
leaves a failed instance's process where it runs, as an orchestrator must
leave what it cannot reach (only the host's power, the fence, stops it).
Once Vigil has the instance ACTIVE on another host, a new process starts
there; the old one is abandoned, not stopped, so a fence that did not cut
the power would show as the same instance answering from two hosts.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from vigil.consumer.manager import Role, Switchover, VnfManager, VnfSpec
from vigil.consumer.webhook import running_consumer
from vigil.testbed import bed, plan
from vigil.testbed.faults import Injector
from vigil.testbed.netns import TestbedError
from vigil.testbed.probe import Sample, outage
from vigil.testbed.state import TestbedState, pid_of, start_process, terminate
from vigil.testbed.workload import Fleet, FleetError

PROBE = "probe"
PROBE_TIMEOUT_S = 0.5  # a request unanswered this long is lost
FOLLOW_INTERVAL_S = 0.05
HANDOVER_S = 0.2
"""In a planned switchover the old active keeps the service address this long
after the new one claimed it, so requests already on their way to it are answered."""


@dataclass(slots=True)
class Measured:
    """One injected fault, measured."""

    host: str
    kind: str
    t00: float
    fault: str | None = None
    detection_ms: float | None = None
    notification_ms: float | None = None
    outage_ms: float | None = None
    switchover_ms: float | None = None  # T00 to the VNF manager's switchover
    lost: int | None = None
    served_by: str | None = None
    checkpoints: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and None not in (self.detection_ms, self.notification_ms, self.outage_ms)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Window:
    """The probe's requests in a time window."""

    requests: int
    failed: int
    longest_failures: int  # consecutive failed requests


class ProbeLog:
    """The probe's output file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: list[Sample] = []
        self._offset = 0
        self._partial = ""

    def refresh(self) -> list[Sample]:
        if not self.path.exists():
            return self.samples
        with self.path.open() as f:
            f.seek(self._offset)
            data = f.read()
            self._offset = f.tell()
        lines = (self._partial + data).split("\n")
        self._partial = lines.pop()
        for line in lines:
            parts = line.split()
            if len(parts) == 5 and parts[0] == "ok":
                self.samples.append(Sample(int(parts[1]), float(parts[2]), True, float(parts[3]), parts[4]))
            elif len(parts) == 3 and parts[0] == "lost":
                self.samples.append(Sample(int(parts[1]), float(parts[2]), False))
        return self.samples

    def window(self, start: float, end: float) -> Window:
        """The requests sent from ``start`` to ``end`` (Unix s): how many, how many failed (lost,
        or no outcome recorded), and the longest run of consecutive failures."""
        ok = {s.seq for s in self.refresh() if s.ok}
        seqs = sorted(s.seq for s in self.samples if start <= s.sent <= end)
        if not seqs:
            return Window(0, 0, 0)
        failed = longest = run = 0
        for seq in range(seqs[0], seqs[-1] + 1):  # a request with no line at all failed too
            if seq in ok:
                run = 0
                continue
            failed += 1
            run += 1
            longest = max(longest, run)
        return Window(seqs[-1] - seqs[0] + 1, failed, longest)

    def steady(self, count: int) -> bool:
        """The last ``count`` outcomes are all answers."""
        recent = sorted(self.refresh()[-count * 2 :], key=lambda s: s.seq)[-count:]
        return len(recent) == count and all(s.ok for s in recent)


class AppOnTestbed:
    def __init__(
        self,
        state: TestbedState,
        *,
        rate: float = 500.0,
        payload_format: str = "aodh",
        timeout_s: float = 10.0,
        maintenance: bool = False,
        workers: int = 0,
        cloud_recovery: bool = False,
    ) -> None:
        if rate < 200:
            raise ValueError("the probe sends at least 200 requests/s")
        self.state = state
        self.rate = rate
        self.payload_format = payload_format
        self.timeout_s = timeout_s
        self.maintenance = maintenance
        self.workers = workers
        self.cloud_recovery = cloud_recovery
        self.follow_errors: list[str] = []
        self._resync = asyncio.Event()
        self._handovers: dict[str, tuple[plan.HostPlan, float]] = {}  # old active -> (its host, release due)
        self.injector = Injector(state)
        self.fleet = Fleet(state.dir, python=state.python)
        self.probe = ProbeLog(state.dir / "probe.out")
        self.vnfm: VnfManager | None = None
        self.log: list[str] = []
        self._stack = contextlib.AsyncExitStack()
        bed.require_api_link()
        self._admin = httpx.AsyncClient(
            base_url=plan.api_url(), headers={"X-Auth-Token": state.tokens["admin"]}, timeout=timeout_s
        )

    # -- start and stop -------------------------------------------------------------

    async def __aenter__(self) -> "AppOnTestbed":
        try:
            self.vnfm, _ = await self._stack.enter_async_context(
                running_consumer(
                    plan.api_url(),
                    self.state.tokens["member"],
                    host=plan.API_ROOT_IP,
                    project=self.state.project,
                    payload_format=self.payload_format,
                    spec=VnfSpec(name="app", workers=self.workers),
                    on_event=self._event,
                    on_switchover=self._switched,
                    unsubscribe_at_exit=True,
                    maintenance=self.maintenance,
                    recreate=not self.cloud_recovery,
                )
            )
            await self._sync_fleet()
            self.probe.path.unlink(missing_ok=True)
            start_process(
                self.state.dir,
                PROBE,
                plan.GW_NS,
                [
                    self.state.python,
                    "-m",
                    "vigil.testbed.probe",
                    "--target",
                    f"{plan.SERVICE_IP}:{plan.SERVICE_PORT}",
                    "--rate",
                    str(self.rate),
                    "--timeout",
                    str(PROBE_TIMEOUT_S),
                    "--out",
                    str(self.probe.path),
                ],
            )
            await self._until(lambda: self.probe.steady(int(self.rate / 10)), "the service answers steadily")
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pid = pid_of(self.state.dir, PROBE)
        if pid is not None:
            await asyncio.to_thread(terminate, [pid])
        self.probe.refresh()
        try:
            await self._stack.aclose()
        finally:
            await asyncio.to_thread(self.fleet.close)
            self.injector.close()
            await self._admin.aclose()

    @property
    def admin(self) -> httpx.AsyncClient:
        """A client of the testbed's Vigil with the admin token."""
        return self._admin

    # -- the workload follows the VNF manager ------------------------------------------

    def _event(self, line: str) -> None:
        self.log.append(line)
        if line.endswith("INSTANCE_ACTION_DONE"):  # an instance moved: follow it now
            self._resync.set()

    def _switched(self, switchover: Switchover) -> None:
        """Right after the role flip: the new active takes the address. In a fault the old one
        gives it up at once; with ``maintenance`` it is healthy and gives it up
        :data:`HANDOVER_S` later (:meth:`_sync_fleet` keeps its process that long)."""
        self.fleet.order(switchover.new_act, "claim")
        old = self.fleet.hosts.get(switchover.failed)
        if not self.maintenance or old is None:
            self.fleet.order(switchover.failed, "release")
            return
        self._handovers[switchover.failed] = (old, time.monotonic() + HANDOVER_S)
        asyncio.get_running_loop().call_later(HANDOVER_S, self._hand_over, switchover.failed, old)

    def _hand_over(self, instance: str, host: plan.HostPlan) -> None:
        self._handovers.pop(instance, None)
        if self.fleet.hosts.get(instance) == host and self.fleet.holder != instance:
            self.fleet.order(instance, "release")

    async def _sync_fleet(self) -> None:
        """One instance process per healthy member, on the member's host; the ACT holds the VIP.
        With ``cloud_recovery``, a failed member's process stays where it runs, and one Vigil has
        ACTIVE on another host is abandoned there (see the module docstring)."""
        assert self.vnfm is not None
        response = await self._admin.get("/v1/instances", params={"project": self.state.project})
        response.raise_for_status()
        where = {i["id"]: i for i in response.json()["instances"]}
        wanted: dict[str, tuple[plan.HostPlan, bool]] = {}
        moved: list[str] = []
        singles = {m.id for m in self.vnfm.members.values() if m.role is Role.SINGLE}
        for member in self.vnfm.members.values():
            inst = where.get(member.id)
            running_on = self.fleet.hosts.get(member.id)
            if inst is None or inst["state"] != "ACTIVE" or not inst.get("host"):
                if self.cloud_recovery and running_on is not None:  # unreachable: it lives or dies with its host
                    wanted[member.id] = (running_on, False)
                continue
            host = plan.host_by_name(self.state.hosts, inst["host"])
            wanted[member.id] = (host, member.role is Role.ACT)
            if self.cloud_recovery and running_on not in (None, host):
                moved.append(member.id)
        now = time.monotonic()
        for instance, (host, due) in self._handovers.items():  # an old active still answering
            if due > now and instance not in wanted and self.fleet.hosts.get(instance) == host:
                wanted[instance] = (host, False)

        def sync() -> None:
            for instance in moved:
                self.fleet.abandon(instance)
            self.fleet.sync(wanted, without_vip=singles)

        await asyncio.to_thread(sync)

    @contextlib.asynccontextmanager
    async def following(self, interval_s: float = FOLLOW_INTERVAL_S) -> AsyncIterator["AppOnTestbed"]:
        """The workload follows Vigil while in the block (see the module docstring);
        a failed re-sync is noted in :attr:`follow_errors` and tried again."""

        async def follow() -> None:
            while True:
                try:
                    await self._sync_fleet()
                except (httpx.HTTPError, FleetError, TestbedError, ValueError) as exc:
                    self.follow_errors.append(str(exc) or type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._resync.wait(), interval_s)
                self._resync.clear()

        task = asyncio.get_running_loop().create_task(follow(), name="vigil.testbed.follow")
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._sync_fleet()

    async def requests_between(self, start: float, end: float) -> Window:
        """The probe's requests sent from ``start`` to ``end`` (Unix s), once each has its outcome."""
        await asyncio.sleep(max(0.0, end + PROBE_TIMEOUT_S - time.time()))
        await self._until(
            lambda: any(s.sent > end + PROBE_TIMEOUT_S + 0.1 for s in self.probe.refresh()[-100:]),
            "the probe has the outcome of every request sent by then",
        )
        return self.probe.window(start, end)

    def act_host(self) -> plan.HostPlan:
        assert self.vnfm is not None
        act = self.vnfm.act
        if act is None or act.id not in self.fleet.hosts:
            raise TestbedError("the VNF has no active instance running")
        return self.fleet.hosts[act.id]

    # -- one fault ------------------------------------------------------------------

    async def _until(self, predicate: Any, what: str, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting until {what}")
            await asyncio.sleep(0.01)

    async def inject(self, kind: str = "link-down") -> Measured:
        """Break the active instance's host and measure detection, notification and outage."""
        assert self.vnfm is not None
        host = self.act_host()
        switchovers = len(self.vnfm.switchovers)
        injected = self.injector.inject(host, kind)
        result = Measured(host.name, kind, injected.t00)
        try:
            vnfm = self.vnfm
            await self._until(lambda: len(vnfm.switchovers) > switchovers, "the VNF manager switches over")
            result.switchover_ms = round((vnfm.switchovers[-1].at - injected.t00) * 1000, 3)
            await self._until(
                lambda: outage(self.probe.refresh(), injected.t00, injected.broken) is not None,
                "the service answers again",
            )
            measured = outage(self.probe.samples, injected.t00, injected.broken)
            assert measured is not None
            result.outage_ms = round(measured.ms, 3)
            result.lost = measured.lost
            result.served_by = measured.served_by
            await self._profile(result, host, injected.t00)
        except (TimeoutError, TestbedError, httpx.HTTPError) as exc:
            result.error = str(exc)
        return result

    async def _profile(self, result: Measured, host: plan.HostPlan, t00: float) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:  # the fault path notifies before its commit: the VNF manager may have switched over first
            response = await self._admin.get("/v1/faults", params={"state": "ACTIVE"})
            response.raise_for_status()
            faults = [
                f for f in response.json()["faults"] if (f["resource_type"], f["resource_id"]) == ("host", host.name)
            ]
            if faults:
                break
            if time.monotonic() > deadline:
                raise TestbedError(f"Vigil has no active fault of {host.name}")
            await asyncio.sleep(0.01)
        result.fault = faults[-1]["id"]
        while True:
            response = await self._admin.get(f"/v1/faults/{result.fault}/profile")
            response.raise_for_status()
            profile = response.json()
            checkpoints: dict[str, float] = profile["checkpoints"]
            if "T09" in checkpoints or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        result.checkpoints = {k: round((v - t00) * 1000, 3) for k, v in checkpoints.items()}
        if "T01" in checkpoints:
            result.detection_ms = round((checkpoints["T01"] - t00) * 1000, 3)
        result.notification_ms = profile.get("notification_ms")
        if result.notification_ms is None:
            raise TestbedError(f"fault {result.fault} has no T09: the VNF manager's receipt was not recorded")

    async def repair(self, host_name: str) -> None:
        """Let the VNF manager finish its recreation, move the workload, repair the host, settle."""
        assert self.vnfm is not None
        host = plan.host_by_name(self.state.hosts, host_name)
        await self.vnfm.settle(self.timeout_s * 3)
        await self._sync_fleet()  # the failed instance's process goes, before its host comes back
        self.injector.clear(host)
        await self.until_stable_up(host.name)
        await self._until(lambda: self.probe.steady(int(self.rate / 10)), "the service answers steadily")

    async def until_stable_up(self, host: str, hold_s: float = 0.4) -> None:
        """Until Vigil has ``host`` UP with no active fault, and still so ``hold_s`` later
        (late reports of the fault, such as the agent's gateway probe's, have come in)."""
        await until_stable_up(self._admin, host, self.timeout_s * 3, hold_s)


async def until_stable_up(admin: httpx.AsyncClient, host: str, timeout_s: float, hold_s: float = 0.4) -> None:
    """See :meth:`AppOnTestbed.until_stable_up`."""

    async def healthy() -> bool:
        response = await admin.get(f"/v1/hosts/{host}")
        response.raise_for_status()
        if response.json()["host"]["status"] != "UP":
            return False
        response = await admin.get("/v1/faults", params={"state": "ACTIVE"})
        response.raise_for_status()
        return not any(f["resource_id"] == host for f in response.json()["faults"])

    deadline = time.monotonic() + timeout_s
    while True:
        if await healthy():
            await asyncio.sleep(hold_s)
            if await healthy():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host} is not steadily UP in Vigil")
        await asyncio.sleep(0.05)


async def clean_start(state: TestbedState, timeout_s: float = 30.0) -> list[str]:
    """Before an app starts on a testbed just brought up: wait until every host is steadily UP
    with no active fault, and reset to ACTIVE the project's instances a fault during the
    bring-up left in ERROR (a host whose first heartbeats came late, while the agents
    started, was declared down for a moment); returns their ids. The app then starts whole,
    as it would on a cloud that has settled."""
    bed.require_api_link()
    headers = {"X-Auth-Token": state.tokens["admin"]}
    async with httpx.AsyncClient(base_url=plan.api_url(), headers=headers, timeout=10.0) as admin:
        for host in plan.hosts(state.hosts):
            await until_stable_up(admin, host.name, timeout_s)
        response = await admin.get("/v1/instances", params={"project": state.project})
        reset = []
        for inst in response.raise_for_status().json()["instances"]:
            if inst["state"] == "ERROR":
                body = {"action": "reset-state", "state": "ACTIVE"}
                (await admin.post(f"/v1/instances/{inst['id']}/action", json=body)).raise_for_status()
                reset.append(str(inst["id"]))
        return reset
