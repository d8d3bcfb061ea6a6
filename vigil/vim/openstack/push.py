"""The inspector's fault actions, pushed to Nova and Neutron after Vigil's own map changed and its notifications left.

Doctor asks the inspector to mark the affected resources down in the VIM,
so that Nova's API (which Doctor's consumer and Tacker query after a
notification) agrees with the alarm. Vigil makes the change in its own map
first, in the inspector's unit of work, and notifies from there; the bus
publishes the unit's resource events only after it is durable and its
notifications are on the wire. This pusher follows the bus and makes Nova
and Neutron say the same:

* a host the inspector forced down: the compute service ``forced_down``
  (``PUT /os-services/{uuid}`` at 2.53, or ``PUT /os-services/force-down``
  at 2.11 on a Nova that answers 2.53 with 406:
  :mod:`vigil.vim.openstack.services`), so Nova's ``host_status`` is DOWN; and the
  reverse on recovery, which Nova refuses (400) while evacuation records
  remain on the host: that one 400 is retried until the compute cleans them up;
* each instance the inspector set to ERROR: ``os-resetState`` ``error``,
  concurrently, at most ``concurrency`` calls in flight;
* each port it set DOWN: Neutron ``data_plane_status`` DOWN.

Only the inspector's changes are pushed (their ``reason`` names the fault),
never changes that came from the VIM itself. Each resource is pending
(:mod:`vigil.vim.openstack.pending`, shared with the sync) from the moment
the bus publishes its change until its call lands or is given up, so the
reconciliation does not copy Nova's older state back meanwhile. Every call is idempotent, so:

* while Nova, Neutron or Keystone cannot be reached or answer 5xx, the calls
  to it wait, one of them probing it with backoff, for as long as it takes,
  and admins have a ``vim.unreachable`` alarm (``vigil.vim.openstack.outages``);
  no attempt budget applies, so an outage longer than the backoff loses
  nothing;
* a 409 or 429 (and the forced-up 400 above) is retried with backoff, at most
  ``policy.max_attempts`` times;
* another 4xx, which will not change (a server deleted meanwhile), gives the
  call up, logged and counted; so does an answer Nova does not document (the
  pusher lives as long as ``vigil serve``: one bad answer must not end it).

Batches are pushed in the order the bus published them, each after the one
before it, so a recovery's forced-up never overtakes its fault's forced-down,
even when both waited for Nova. After each batch is done (landed or given
up) its last event's ``seq`` is recorded as the mark ``vim.push`` in the
store (``log_marks``), off the fault's path. At start, :meth:`FaultPusher.resume`
reads the inspector's events after that mark: each resource they changed
has the state the map holds now pushed again (a host's ``forced_down``, a
server's ERROR, a port's ``data_plane_status``), together with the state of
every host a fault holds forced down; so a kill between the notification and
the push loses nothing, a recovery's forced-up and the ERROR of servers
whose host recovered meanwhile included. Those resources are pending before
the sync's first reconciliation reads Nova, which therefore does not copy
Nova's older state back over them. A resource changed since by someone else
(a server reset or evacuated, a host forced by an admin) is pushed as the
map holds it now, never as the old event said. The restart also probes the
services whose ``vim.unreachable`` alarm it found open, to clear it.
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from vigil.crashpoints import crash_point
from vigil.domain.events import ResourceEvent
from vigil.domain.model import Host, Instance, Port, ResourceType
from vigil.domain.retry import RetryPolicy
from vigil.domain.states import DataPlaneStatus, InstanceState
from vigil.inspector.fault_actions import forced_down_by_fault
from vigil.vim.openstack.outages import Outages, VimAlarms
from vigil.vim.openstack.pending import PendingPushes
from vigil.vim.openstack.services import ComputeServices
from vigil.vim.openstack.session import IDENTITY, ApiError, OpenStackSession

log = logging.getLogger(__name__)

TEMPORARY = frozenset({409, 429})
PUSH_MARK = "vim.push"  # the pusher's mark in the store's log_marks
REPLAY_PAGE = 1_000
# The field of each kind of resource whose fault state is pushed to the VIM.
PUSHED_FIELD = {
    ResourceType.HOST: "forced_down",
    ResourceType.INSTANCE: "state",
    ResourceType.PORT: "data_plane_status",
}


@dataclass
class PushCounters:
    pushed: int = 0
    retried: int = 0  # attempts made again, after a 409/429 or while probing a service that was away
    failed: int = 0  # calls given up (an answer that will not change, or the attempt budget spent)
    last_error: str | None = None
    # service -> when it last took a fault action: Nova sets the state before it answers, so from then its API
    # shows it (what the OpenStack demo measures, as its bench measures a bare client's calls)
    landed_at: dict[str, datetime] = field(default_factory=dict)


class MapView(Protocol):
    """What the pusher reads of Vigil's map (the resource map)."""

    def hosts(self) -> list[Host]: ...
    def host(self, name: str) -> Host: ...
    def instance(self, ident: str) -> Instance: ...
    def port(self, ident: str) -> Port: ...
    def has(self, kind: type[Host | Instance | Port], ident: str) -> bool: ...
    def instances_on(self, host: str) -> list[Instance]: ...
    def ports_of(self, instance: str) -> list[Port]: ...


class PushLog(Protocol):
    """The durable event log as the pusher reads it at start and marks it as it goes (the store)."""

    async def mark(self, name: str) -> int: ...
    async def set_mark(self, name: str, seq: int, at: datetime) -> None: ...
    async def events(
        self, *, after_seq: int = 0, reasons: Sequence[str] = (), limit: int = 100
    ) -> list[ResourceEvent]: ...


@dataclass(frozen=True, slots=True)
class Push:
    """One idempotent call: what it sets, for the log, the service it goes to, and how to make it."""

    what: str
    service: str
    call: Callable[[], Awaitable[object]]
    temporary: frozenset[int] = TEMPORARY  # the 4xx answers that may pass with time
    resource: str | None = None  # the host, server or port whose state it sets (None: a probe)


@dataclass
class FaultPusher:
    """Pushes the fault state of Vigil's map to Nova and Neutron; ``run`` follows the bus."""

    session: OpenStackSession
    concurrency: int = 128  # a host's calls at once, ahead of its consumers' queries (settings: why)
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(initial_s=0.2, max_delay_s=10.0, max_attempts=30))
    alarms: VimAlarms | None = None  # told of the services that cannot be reached (the notifier)
    counters: PushCounters = field(default_factory=PushCounters)
    services: ComputeServices | None = None  # shared with the driver (vigil.vim.openstack.driver); made if not given
    pending: PendingPushes = field(default_factory=PendingPushes)  # shared with the sync, which leaves these alone
    log: PushLog | None = None  # where the mark is kept; none: a restart pushes only what faults hold
    _directory: ComputeServices = field(init=False)
    _gate: asyncio.Semaphore = field(init=False)
    _outages: Outages = field(init=False)
    _rng: random.Random = field(default_factory=random.Random)
    _waiting: Counter[str] = field(default_factory=Counter)  # service -> fault actions begun and not done

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.concurrency)
        self._outages = Outages(self.alarms, self.session.known_endpoint)
        self._directory = self.services if self.services is not None else ComputeServices(self.session)

    def state(self) -> dict[str, Any]:
        """For ``GET /v1/vim``: the resources whose push is on its way, and the counters."""
        waiting = {service: n for service, n in sorted(self._waiting.items()) if n}
        return {"pending": len(self.pending), "waiting": waiting, **asdict(self.counters)}

    # -- what to push ------------------------------------------------------------------------------------

    def pushes_for(self, events: Sequence[ResourceEvent]) -> list[Push]:
        """The calls a batch of committed resource events asks for: only the inspector's fault actions."""
        pushes: list[Push] = []
        for event in events:
            changes = event.changes
            if event.resource_type is ResourceType.HOST and "forced_down" in changes and _by_fault(event):
                pushes.append(self._force(event.resource_id, bool(changes["forced_down"][1])))
            elif event.resource_type is ResourceType.INSTANCE and _by_fault(event):
                if changes.get("state", (None, None))[1] == InstanceState.ERROR:
                    pushes.append(self._reset_error(event.resource_id))
            elif event.resource_type is ResourceType.PORT and _by_fault(event) and "data_plane_status" in changes:
                pushes.append(self._port_status(event.resource_id, str(changes["data_plane_status"][1])))
        return pushes

    def pushes_for_state(self, rmap: MapView) -> list[Push]:
        """The calls that make Nova and Neutron hold what the map holds for hosts a fault forced down."""
        pushes: list[Push] = []
        for host in rmap.hosts():
            if not forced_down_by_fault(host):
                continue
            pushes.append(self._force(host.name, True))
            for inst in rmap.instances_on(host.name):
                if inst.state is InstanceState.ERROR:
                    pushes.append(self._reset_error(inst.id))
                    pushes.extend(
                        self._port_status(p.id, str(p.data_plane_status))
                        for p in rmap.ports_of(inst.id)
                        if p.data_plane_status is DataPlaneStatus.DOWN
                    )
        return pushes

    def pushes_for_resources(self, events: Sequence[ResourceEvent], rmap: MapView) -> list[Push]:
        """The calls that make Nova and Neutron hold what the map holds *now* of each resource the inspector's
        ``events`` changed: a restart's replay, never the old event's value (someone may have changed it since)."""
        pushes: dict[str, Push] = {}
        for event in events:
            ident, kind = event.resource_id, event.resource_type
            if PUSHED_FIELD.get(kind) not in event.changes:
                continue
            if kind is ResourceType.HOST and rmap.has(Host, ident):
                pushes[ident] = self._force(ident, rmap.host(ident).forced_down)
            elif kind is ResourceType.INSTANCE and rmap.has(Instance, ident):
                if rmap.instance(ident).state is InstanceState.ERROR:
                    pushes[ident] = self._reset_error(ident)
            elif kind is ResourceType.PORT and rmap.has(Port, ident):
                pushes[ident] = self._port_status(ident, str(rmap.port(ident).data_plane_status))
        return list(pushes.values())

    # -- the calls ---------------------------------------------------------------------------------------

    def _force(self, host: str, down: bool) -> Push:
        async def call() -> object:
            await self._directory.update(host, {"forced_down": down})
            return None

        # Nova refuses (400) to force a host up while evacuation records remain, until its compute cleans them up.
        return Push(f"host {host} forced_down={down}", "compute", call, TEMPORARY if down else TEMPORARY | {400}, host)

    def _reset_error(self, server: str) -> Push:
        async def call() -> object:
            body = {"os-resetState": {"state": "error"}}
            return await self.session.request("compute", "POST", f"/servers/{server}/action", json=body)

        return Push(f"server {server} ERROR", "compute", call, resource=server)

    def _port_status(self, port: str, status: str) -> Push:
        value = DataPlaneStatus.DOWN if status == DataPlaneStatus.DOWN else DataPlaneStatus.ACTIVE

        async def call() -> object:
            body = {"port": {"data_plane_status": str(value)}}
            return await self.session.request("network", "PUT", f"/v2.0/ports/{port}", json=body)

        return Push(f"port {port} data_plane_status={value}", "network", call, resource=port)

    def _probe(self, service: str) -> Push:
        """The cheapest call a service answers (its version document): whether it is back."""

        async def call() -> object:
            return await self.session.request(service, "GET", "/")

        return Push(f"{service} answers", service, call)

    async def load_services(self) -> None:
        """Learn every compute service's UUID in one call, so a fault's first push needs no lookup first."""
        await self._directory.load()

    # -- running them ------------------------------------------------------------------------------------

    async def push(self, pushes: Sequence[Push]) -> None:
        """Run the calls concurrently (bounded), each retried while the failure may pass."""
        self._begin(pushes)
        await self._push_begun(pushes)

    def _begin(self, pushes: Sequence[Push]) -> None:
        """Each resource is pending (for the sync) from now until its call lands or is given up."""
        for p in pushes:
            if p.resource is not None:
                self.pending.begin(p.resource)
                self._waiting[p.service] += 1

    async def _push_begun(self, pushes: Sequence[Push]) -> None:
        if not pushes:
            return
        crash_point("before-vim-push")
        await asyncio.gather(*(self._landed(p) for p in pushes))

    async def _landed(self, push: Push) -> None:
        try:
            await self._attempt(push)
        finally:
            if push.resource is not None:
                self.pending.end(push.resource)
                self._waiting[push.service] -= 1

    async def _attempt(self, push: Push) -> None:
        attempt = 1
        while True:
            await self._outages.wait((IDENTITY, push.service), push)
            began = time.monotonic()
            try:
                async with self._gate:
                    await push.call()
            except ApiError as exc:
                self.counters.last_error = f"{push.what}: {exc}"
                service = exc.service or push.service
                if exc.unreachable:
                    if await self._outages.failed(service, str(exc), began, push):
                        self.counters.retried += 1
                        await asyncio.sleep(self.policy.delay(attempt, self._rng))
                        attempt += 1
                    continue
                await self._outages.answered({IDENTITY, service}, began)  # an answer: the service is there
                if exc.status in push.temporary and self.policy.should_retry(attempt):
                    self.counters.retried += 1
                    await asyncio.sleep(self.policy.delay(attempt, self._rng))
                    attempt += 1
                    continue
                self.counters.failed += 1
                log.warning("gave up pushing %s to OpenStack: %s", push.what, exc)
                return
            except Exception:  # an answer Nova does not document, or a bug: this call only, never the pusher
                self.counters.failed += 1
                self.counters.last_error = f"{push.what}: unexpected failure"
                log.exception("gave up pushing %s to OpenStack", push.what)
                self._outages.release(push)
                return
            await self._outages.answered((IDENTITY, push.service), began)
            self.counters.pushed += 1
            if push.resource is not None:
                self.counters.landed_at[push.service] = datetime.now(UTC)
            return

    async def resume(self, rmap: MapView) -> "Resumed":
        """What a restart pushes again (what a crash may have cut off): the map's state of each resource the
        inspector changed after the mark, and of every host a fault holds forced down. Each is pending from now,
        so call it before the sync's first reconciliation; :meth:`reconcile` pushes them."""
        touched: dict[str, ResourceEvent] = {}  # resource -> the inspector's latest change of it after the mark
        last: int | None = None
        if self.log is not None:
            after = await self.log.mark(PUSH_MARK)
            while page := await self.log.events(after_seq=after, reasons=INSPECTOR_REASONS, limit=REPLAY_PAGE):
                touched.update((e.resource_id, e) for e in page if PUSHED_FIELD.get(e.resource_type) in e.changes)
                last = after = page[-1].seq
        by_resource = {p.resource: p for p in self.pushes_for_state(rmap)}
        by_resource.update((p.resource, p) for p in self.pushes_for_resources(list(touched.values()), rmap))
        pushes = list(by_resource.values())
        self._begin(pushes)
        return Resumed(pushes, last)

    async def reconcile(self, rmap: MapView, resumed: "Resumed | None" = None) -> None:
        """Push what :meth:`resume` found (found now if not given), and probe the services a restart found a
        ``vim.unreachable`` alarm open for."""
        if resumed is None:
            resumed = await self.resume(rmap)
        probes = [self._probe(service) for service in self._outages.restore()]
        await self.load_services()
        await self._push_begun([*resumed.pushes, *probes])
        if resumed.seq is not None:
            await self._marked(resumed.seq)

    async def _marked(self, seq: int) -> None:
        """Record that the inspector's changes up to ``seq`` are pushed; a failure only means a restart pushes
        them again (every call is idempotent)."""
        if self.log is None:
            return
        try:
            await self.log.set_mark(PUSH_MARK, seq, datetime.now(UTC))
        except Exception as exc:
            log.warning("could not record the fault actions pushed up to event %d: %s", seq, exc)

    async def run(self, events: "asyncio.Queue[ResourceEvent]") -> None:
        """Follow committed resource events (a bus subscription's queue) and push what they ask for, a batch at
        a time in bus order. A batch's resources are pending as soon as the bus publishes it, not once the
        batches before it (waiting for Nova, perhaps) are done."""
        ready: asyncio.Queue[tuple[int, list[Push]]] = asyncio.Queue()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._take(events, ready), name="vigil.vim.openstack.push.take")
            while True:
                seq, pushes = await ready.get()
                await self._push_begun(pushes)
                await self._marked(seq)

    async def _take(
        self, events: "asyncio.Queue[ResourceEvent]", ready: "asyncio.Queue[tuple[int, list[Push]]]"
    ) -> None:
        while True:
            batch = [await events.get()]
            while not events.empty():
                batch.append(events.get_nowait())
            pushes = self.pushes_for(batch)
            if pushes:
                self._begin(pushes)
                ready.put_nowait((batch[-1].seq, pushes))


@dataclass(frozen=True, slots=True)
class Resumed:
    """A restart's pushes (already pending) and the seq of the last event they cover (None: no replay)."""

    pushes: list[Push]
    seq: int | None


INSPECTOR_REASONS = ("fault event", "failure reported during maintenance", "held recovery released")
"""The names of the inspector's units of work (``vigil.inspector.intake``): a report applied (or replayed), a
failure held during maintenance, a recovery released after its hold-down."""


def _by_fault(event: ResourceEvent) -> bool:
    """Whether the inspector made this change, and not an admin, an operation or the VIM itself."""
    return event.reason is not None and event.reason.startswith(INSPECTOR_REASONS)
