"""Vigil's map kept true to Nova and Neutron: notifications as they come, and a periodic reconciliation.

Nova is the truth about where servers are and what state they and the
compute services are in; Vigil's map is what the inspector, the maintenance
workflow and the API read, so it must follow. :class:`NovaSync` does it two
ways, one code path each:

* :meth:`NovaSync.apply` applies one parsed versioned notification
  (:mod:`vigil.vim.openstack.notifications`) as one unit of work;
* :meth:`NovaSync.reconcile` reads the inventory again
  (:func:`~vigil.vim.openstack.inventory.read_topology`), applies what
  differs, and reports it as drift: a notification lost or never sent
  (Nova sends none for server groups, nor for ports) cannot leave the map
  wrong for longer than one interval.

Two rules keep the map from going back in time or undoing a fault:

* **Freshness.** A notification stamped before the last reconciliation
  read began is in that read already (the backlog a restart finds on the
  queue, for servers long deleted, is skipped, not replayed). Each
  resource also remembers the time of the newest change applied to it by
  a notification or by Vigil's own units of work (the sync follows the
  bus): a notification stamped before that (a late ``service.update`` from
  before a fault, a ``forced_down`` confirmation that arrives after the
  recovery) is skipped, and a reconciliation read that began before it
  leaves that resource alone. This compares Nova's clock with Vigil's, as
  any OpenStack deployment does across its services: keep them in NTP.
* **The inspector owns an open fault.** On a host a fault forced down
  (``forced_down`` with the ``fault:`` reason), the host's admin state and
  ``forced_down``, its servers' ERROR and its ports' DOWN are Vigil's
  decision, which the fault pusher (:mod:`vigil.vim.openstack.push`) makes
  Nova hold; until it has, Nova still says otherwise, and that is not
  drift to apply but a push under way. A server moved off the host (an
  evacuation) is Nova's again.

Liveness (``reachable``) is never taken from Nova: Vigil's monitors own it,
and Nova's service state lags them by its report interval.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from vigil.controller.changes import Changes
from vigil.controller.resource_map import ResourceMap
from vigil.controller.transactions import Transactions
from vigil.domain.events import ResourceEvent
from vigil.domain.ids import GroupId, HostName
from vigil.domain.model import Host, Instance, Port, Project, ServerGroup
from vigil.domain.states import INSTANCE_TRANSITIONS, AdminState, DataPlaneStatus, InstanceState
from vigil.domain.topology import Topology
from vigil.inspector.fault_actions import forced_down_by_fault
from vigil.vim.openstack import inventory
from vigil.vim.openstack.notifications import (
    Change,
    InstanceChanged,
    InstanceCreated,
    InstanceDeleted,
    InstanceMoved,
    ServiceChanged,
)
from vigil.vim.openstack.pending import PendingPushes
from vigil.vim.openstack.session import ApiError, OpenStackSession

log = logging.getLogger(__name__)

NOTIFICATION_REASON = "nova notification: "
RECONCILIATION_REASON = "nova reconciliation"
SERVER_MICROVERSION = "2.71"  # GET /servers/{id} names the server's groups


@dataclass
class SyncStats:
    """What the sync has done, for the operator (and the tests)."""

    applied: int = 0
    stale: int = 0  # notifications older than what the map already holds
    unknown: int = 0  # about a resource the map does not know (reconciliation adds it)
    reconciliations: int = 0
    drift: int = 0  # differences reconciliation found and applied
    refused: int = 0  # differences that could not be applied (logged)
    last_drift: list[str] = field(default_factory=list)
    last_reconciled_at: datetime | None = None


def notification_time(stamp: str | None) -> datetime | None:
    """An oslo timestamp (``2026-12-07 10:00:00.123456``, UTC) as an aware datetime."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class NovaSync:
    """Applies Nova's notifications and reconciliation reads to Vigil's map, in units of work of their own."""

    def __init__(
        self,
        transactions: Transactions,
        session: OpenStackSession | None,
        clock: Callable[[], datetime],
        pending: PendingPushes | None = None,
    ) -> None:
        self._tx = transactions
        self._session = session
        self._clock = clock
        # What the pusher is still making Nova say (vigil.vim.openstack.pending); none without a pusher.
        self._pending = pending if pending is not None else PendingPushes()
        self._lock = asyncio.Lock()  # one writer of Nova's truth at a time, in arrival order
        self._fresh: dict[str, datetime] = {}  # resource id -> time of the newest change applied
        self._floor: datetime | None = None  # the last reconciliation read began then: anything older is in it
        self._tick = asyncio.Event()
        self.stats = SyncStats()

    @property
    def map(self) -> ResourceMap:
        return self._tx.map

    # -- waiting for the map -----------------------------------------------------------------------------

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``condition`` holds of the map (checked after each change the sync applies); ``False``
        when ``timeout_s`` passes first. A driver's operation ends this way: Nova tells when it is done."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    tick = self._tick
                    if condition():
                        return True
                    await tick.wait()
        except TimeoutError:
            return condition()

    def _changed(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    # -- freshness ----------------------------------------------------------------------------------------

    def saw(self, events: Sequence[ResourceEvent]) -> None:
        """Vigil's own committed changes (from the bus): a Nova notification older than them is stale."""
        for event in events:
            if event.reason is None or not event.reason.startswith((NOTIFICATION_REASON, RECONCILIATION_REASON)):
                self._touch(event.resource_id, event.time)

    async def follow(self, events: "asyncio.Queue[ResourceEvent]") -> None:
        """Follow the bus (a subscription's queue) for :meth:`saw`."""
        while True:
            batch = [await events.get()]
            while not events.empty():
                batch.append(events.get_nowait())
            self.saw(batch)

    def _touch(self, ident: str, at: datetime) -> None:
        if at > self._fresh.get(ident, at.min.replace(tzinfo=UTC)):
            self._fresh[ident] = at

    def _stale(self, ident: str, at: datetime | None) -> bool:
        if at is None:
            return False
        newest = self._fresh.get(ident)
        return (self._floor is not None and at < self._floor) or (newest is not None and at < newest)

    # -- notifications -------------------------------------------------------------------------------------

    async def apply(self, change: Change) -> bool:
        """Apply one notification's change; ``False`` if it was stale or about nothing the map knows.

        Returns once the change is durable (the consumer acknowledges the message then). The map changes
        under the lock, in arrival order; the write is only queued there, in the same order, so the
        notifications that arrive while one is written share the committer's next transaction."""
        at = notification_time(change.timestamp)
        written: asyncio.Future[None] | None = None
        async with self._lock:
            changes = self._tx.begin(NOTIFICATION_REASON + change.event_type, now=None)
            try:
                applied = await self._apply(changes, change, at)
            finally:  # what changed in the map is made durable, even when a later step of the change failed
                if changes.batch.upserts or changes.batch.deletes:
                    written = self._tx.submit(changes)
        if written is not None:
            await written
            self._changed()
        self.stats.applied += applied
        return applied

    async def _apply(self, changes: Changes, change: Change, at: datetime | None) -> bool:
        rmap = self.map
        ident = change.host if isinstance(change, ServiceChanged) else change.id
        if self._stale(ident, at):
            self.stats.stale += 1
            return False
        match change:
            case ServiceChanged():
                if change.binary != "nova-compute" or not rmap.has(Host, change.host):
                    self.stats.unknown += change.binary == "nova-compute"
                    return False
                if change.host in self._pending:  # Nova's state before the push that is on its way
                    self.stats.stale += 1
                    return False
                self._host_state(
                    changes,
                    rmap.host(change.host),
                    disabled=change.disabled,
                    reason=change.disabled_reason,
                    forced_down=change.forced_down,
                )
            case InstanceCreated():
                if not rmap.has(Instance, change.id):
                    if change.host is None or not rmap.has(Host, change.host):
                        self.stats.unknown += 1
                        return False
                    await self._create(changes, change)
                else:
                    self._server_state(changes, rmap.instance(change.id), change.host, change.state, None)
            case InstanceDeleted():
                if not rmap.has(Instance, change.id):
                    return False
                self._delete(changes, rmap.instance(change.id))
            case InstanceChanged():
                if not rmap.has(Instance, change.id):
                    self.stats.unknown += 1
                    return False
                self._server_state(changes, rmap.instance(change.id), change.host, change.state, change.migrating_to)
            case InstanceMoved():
                if not rmap.has(Instance, change.id):
                    self.stats.unknown += 1
                    return False
                inst = rmap.instance(change.id)
                self._server_state(changes, inst, change.host or inst.host, change.state, None, moved=True)
        if at is not None:
            self._touch(ident, at)
        return True

    # -- the map changes, one rule each --------------------------------------------------------------------

    def _fault_owned(self, host: HostName | None) -> bool:
        if host is None or not self.map.has(Host, host):
            return False
        return forced_down_by_fault(self.map.host(host))

    def _host_state(
        self, changes: Changes, host: Host, *, disabled: bool, reason: str | None, forced_down: bool
    ) -> list[str]:
        if self._fault_owned(host.name):
            return []
        fields: dict[str, Any] = {
            "admin_state": AdminState.DISABLED if disabled else AdminState.ENABLED,
            "disabled_reason": reason if disabled or forced_down else None,
            "forced_down": forced_down,
        }
        return [f"host {host.name} {k}" for k in changes.update(host, **fields)]

    def _server_state(
        self,
        changes: Changes,
        inst: Instance,
        host: HostName | None,
        state: InstanceState,
        migrating_to: HostName | None,
        *,
        moved: bool = False,
    ) -> list[str]:
        rmap = self.map
        new_host = host if host is not None and rmap.has(Host, host) else inst.host
        stays = new_host == inst.host
        if stays and self._fault_owned(inst.host) and inst.state is InstanceState.ERROR:
            return []  # the fault's ERROR, until the pusher has made Nova say it
        keep_state = inst.id in self._pending  # Nova's state is older than the reset the pusher is sending
        target = migrating_to if migrating_to is not None and rmap.has(Host, migrating_to) else None
        if state is InstanceState.MIGRATING and target is None:
            target = inst.migrating_to  # Nova named the target earlier; the update that follows does not repeat it
        fields: dict[str, Any] = {
            "host": new_host,
            "migrating_to": target if state is InstanceState.MIGRATING else None,
        }
        found = [f"instance {inst.id} {k}" for k in changes.update(inst, **fields)]
        if not keep_state:
            found += [f"instance {inst.id} state" for _ in self._to_state(changes, inst, state)]
        if not stays or moved:
            for port in rmap.ports_of(inst.id):
                moved_fields: dict[str, Any] = {"host": inst.host}
                if not stays:  # rebound on the new host: its data plane is up, as Neutron binds it
                    moved_fields["data_plane_status"] = DataPlaneStatus.ACTIVE
                found += [f"port {port.id} {k}" for k in changes.update(port, **moved_fields)]
        return found

    def _to_state(self, changes: Changes, inst: Instance, state: InstanceState) -> list[str]:
        """Nova's state, through the shortest legal path of Vigil's table (Nova allows moves Vigil's coarser
        model lists in two steps, such as ERROR to SHUTOFF by way of a reset to ACTIVE)."""
        done = []
        for step in _path(inst.state, state):
            done += list(changes.update(inst, state=step))
        return done

    async def _create(self, changes: Changes, change: InstanceCreated) -> None:
        """A server Nova built: its groups from Nova and its ports from Neutron (no notification says them),
        read before the map changes, so nobody sees the server without its ports."""
        rmap = self.map
        group = await self._group_of(change.id)
        ports = await self._ports_of(change.id)
        if not rmap.has(Project, change.project):
            changes.create(Project(change.project, change.project))
        inst = Instance(
            change.id,
            change.name,
            change.project,
            change.host,
            vcpus=change.vcpus,
            state=InstanceState.BUILD,
            group=group if group is not None and rmap.has(ServerGroup, group) else None,
            metadata=dict(change.metadata),
        )
        changes.create(inst)
        self._to_state(changes, inst, change.state)
        for port in ports:
            if not rmap.has(Port, port.id):
                changes.create(port)

    def _delete(self, changes: Changes, inst: Instance) -> None:
        for port in self.map.ports_of(inst.id):
            changes.delete(port)
        changes.delete(inst)

    async def _group_of(self, server: str) -> GroupId | None:
        if self._session is None:
            return None
        try:
            found = await self._session.get("compute", f"/servers/{server}", microversion=SERVER_MICROVERSION)
        except ApiError as exc:  # reconciliation sets it
            log.warning("could not read server %s's groups: %s", server, exc)
            return None
        groups = found["server"].get("server_groups") or []
        return GroupId(groups[0]) if groups else None

    async def _ports_of(self, server: str) -> list[Port]:
        if self._session is None:
            return []
        try:
            found = (await self._session.get("network", "/v2.0/ports", device_id=server))["ports"]
        except ApiError as exc:  # reconciliation adds them
            log.warning("could not read server %s's ports: %s", server, exc)
            return []
        return [inventory.port(p) for p in found]

    async def observe(self, ident: str, host: str | None, status: str, reason: str) -> bool:
        """Apply what Nova's API said of one server just now (a driver's operation ended there, and the
        notification saying so has not come: lost, or late), by the rules a notification's change follows;
        ``False`` if the map does not know the server or nothing changed."""
        at = self._clock()
        async with self._lock:
            if not self.map.has(Instance, ident):
                return False
            inst = self.map.instance(ident)
            changes = self._tx.begin(reason, now=None)
            moved = host is not None and host != inst.host
            state = inventory.instance_state(status)
            found = self._server_state(changes, inst, HostName(host) if host else None, state, None, moved=moved)
            if found:
                await self._tx.commit(changes)
        if found:
            self._touch(ident, at)
            self._changed()
        return bool(found)

    # -- reconciliation -------------------------------------------------------------------------------------

    async def reconcile(self) -> list[str]:
        """Read the inventory and apply what differs from the map; returns the differences (the drift)."""
        assert self._session is not None
        started, version, pushed = self._clock(), self.map.changes.version, self._pending.version
        topology = await inventory.read_topology(self._session)
        async with self._lock:
            changes = self._tx.begin(RECONCILIATION_REASON)
            drift = self._reconcile(changes, topology, started, (version, pushed))
            self._floor = started  # what the read saw is as fresh as the read, whatever it is about
            if drift:
                await self._tx.commit(changes)
                self._changed()
        self.stats.reconciliations += 1
        self.stats.last_reconciled_at = started
        if drift:
            self.stats.drift += len(drift)
            self.stats.last_drift = drift[:50]
            log.warning("reconciliation with Nova found %d difference(s): %s", len(drift), "; ".join(drift[:10]))
        return drift

    def _reconcile(self, changes: Changes, truth: Topology, started: datetime, versions: tuple[int, int]) -> list[str]:
        """Each resource on its own: one that cannot be changed (a state Vigil's table refuses) is logged and
        left, and the rest still follow; what did change is in ``changes`` and is committed with it."""
        rmap = self.map
        drift: list[str] = []

        def current(ident: str) -> bool:
            """Whether the read may judge this resource: nothing changed it in the map since the read began
            (the inspector's change, say, applied but not yet durable), no notification newer than the read was
            applied to it, and Nova is not still being told Vigil's change (what it says until then is older
            than the map, also when the push landed after the read began)."""
            return (
                not rmap.changes.changed_since(ident, versions[0])
                and not self._stale(ident, started)
                and not self._pending.since(ident, versions[1])
            )

        def each(what: str, act: Callable[[], list[str]]) -> None:
            try:
                drift.extend(act())
            except Exception:
                self.stats.refused += 1
                log.exception("reconciling %s with Nova failed; it is left as the map holds it", what)

        def create(resource: Host | Project | ServerGroup | Instance | Port, what: str) -> list[str]:
            changes.create(resource)
            return [f"{what} added"]

        servers = {i.id: i for i in truth.instances}
        ports = {p.id: p for p in truth.ports}
        known_groups = {g.id for g in truth.groups}
        for host in truth.hosts:
            if not rmap.has(Host, host.name):
                each(host.name, partial(create, host, f"host {host.name}"))
            elif current(host.name):
                each(host.name, partial(self._host_drift, changes, host))
        for project in truth.projects:
            if not rmap.has(Project, project.id):
                each(project.id, partial(create, project, f"project {project.id}"))
        for group in truth.groups:
            if not rmap.has(ServerGroup, group.id):
                each(group.id, partial(create, group, f"server group {group.id}"))
        for inst in truth.instances:
            if not rmap.has(Instance, inst.id):
                each(inst.id, partial(create, inst, f"instance {inst.id}"))
            elif current(inst.id):
                each(inst.id, partial(self._server_drift, changes, inst))
        for port in truth.ports:
            if not rmap.has(Port, port.id):
                each(port.id, partial(create, port, f"port {port.id}"))
            elif current(port.id):
                each(port.id, partial(self._port_drift, changes, port))

        def remove(resource: Port | Instance | ServerGroup, what: str) -> list[str]:
            if isinstance(resource, Instance):
                self._delete(changes, resource)
            else:
                changes.delete(resource)
            return [f"{what} gone"]

        for mine in list(rmap.ports()):
            if mine.id not in ports and mine.instance in servers and current(mine.instance):
                each(mine.id, partial(remove, mine, f"port {mine.id}"))
        for gone in list(rmap.instances()):
            if gone.id not in servers and current(gone.id):
                each(gone.id, partial(remove, gone, f"instance {gone.id}"))
        for group in list(rmap.groups()):
            if group.id not in known_groups and not rmap.members(group.id):
                each(group.id, partial(remove, group, f"server group {group.id}"))
        return drift

    def _host_drift(self, changes: Changes, truth: Host) -> list[str]:
        known = self.map.host(truth.name)
        found = self._host_state(
            changes,
            known,
            disabled=truth.admin_state is AdminState.DISABLED,
            reason=truth.disabled_reason,
            forced_down=truth.forced_down,
        )
        return found + [f"host {truth.name} vcpus" for _ in changes.update(known, vcpus=truth.vcpus)]

    def _server_drift(self, changes: Changes, truth: Instance) -> list[str]:
        mine = self.map.instance(truth.id)
        found = self._server_state(changes, mine, truth.host, truth.state, mine.migrating_to)
        fields = {"vcpus": truth.vcpus, "group": truth.group, "metadata": truth.metadata}
        return found + [f"instance {truth.id} {k}" for k in changes.update(mine, **fields)]

    def _port_drift(self, changes: Changes, truth: Port) -> list[str]:
        mine = self.map.port(truth.id)
        fields: dict[str, Any] = {"host": truth.host}
        if not (self._fault_owned(mine.host) and mine.data_plane_status is DataPlaneStatus.DOWN):
            fields["data_plane_status"] = truth.data_plane_status
        return [f"port {truth.id} {k}" for k in changes.update(mine, **fields)]

    async def run_reconciliation(self, interval_s: float) -> None:
        """Reconcile every ``interval_s``; a failed read (Nova away) is logged and tried at the next round."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciliation with Nova failed; trying again in %.0f s", interval_s)


def _path(old: InstanceState, new: InstanceState) -> list[InstanceState]:
    """The states from ``old`` to ``new`` (excluding ``old``) by the fewest legal transitions."""
    if INSTANCE_TRANSITIONS.allows(old, new):
        return [] if old == new else [new]
    frontier: list[list[InstanceState]] = [[old]]
    seen = {old}
    while frontier:
        nxt: list[list[InstanceState]] = []
        for path in frontier:
            for state in sorted(INSTANCE_TRANSITIONS.successors(path[-1]), key=str):
                if state in seen or state is InstanceState.DELETED:
                    continue
                if state == new:
                    return [*path[1:], state]
                seen.add(state)
                nxt.append([*path, state])
        frontier = nxt
    return [new]  # no legal path: the table refuses, loudly


__all__ = ["NovaSync", "SyncStats", "notification_time"]
