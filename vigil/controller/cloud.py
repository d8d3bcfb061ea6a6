"""The embedded cloud: Vigil's default VIM, so it runs with nothing else installed.

It plays Nova and Neutron for Vigil's own resource map: boots and deletes
instances through the scheduler, migrates them (cold or live, taking a
configurable time), evacuates them off a failed host, enables, disables and
forces hosts down, resets instance states and sets port data-plane status.

Every operation is one :class:`~vigil.controller.changes.Changes`: the map
changes at once, then the committer persists the rows and events in one
transaction and publishes the events. Operations that take time (boot,
migrate, evacuate) return an :class:`Operation` after their first, durable
step; a named background task finishes them, and ``Operation.done`` resolves
to the instance as it ends.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vigil.controller.changes import Changes, Committer
from vigil.controller.ports import ChangeBatch, Clock, Snapshot
from vigil.controller.resource_map import ResourceMap
from vigil.controller.scheduler import PlacementRequest, check_host, select_host
from vigil.controller.transactions import Transactions
from vigil.controller.vim import Operation
from vigil.domain.copying import snapshot
from vigil.domain.errors import Conflict, NotFound
from vigil.domain.ids import GroupId, InstanceId, PortId, ProjectId
from vigil.domain.maintenance import GroupConstraints
from vigil.domain.model import Host, Instance, Port, Resource, ServerGroup, resource_type
from vigil.domain.placement import GroupRules
from vigil.domain.states import (
    INSTANCE_TRANSITIONS,
    RESETTABLE_STATES,
    AdminState,
    DataPlaneStatus,
    HostStatus,
    InstanceState,
)
from vigil.domain.topology import Topology, check_references

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CloudTimings:
    """How long simulated operations take, in seconds."""

    boot_s: float = 0.0
    cold_migration_s: float = 2.0
    live_migration_s: float = 1.0
    evacuate_s: float = 0.5


def _new_id() -> str:
    return str(uuid.uuid4())


class EmbeddedCloud:
    """The embedded VIM driver (:class:`vigil.controller.vim.Vim`): operations on the resource map, made durable
    and published in order."""

    def __init__(
        self,
        rmap: ResourceMap,
        committer: Committer,
        clock: Clock,
        *,
        timings: CloudTimings = CloudTimings(),
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.map = rmap
        self.timings = timings
        self.transactions = Transactions(rmap, committer, clock)
        self._committer = committer
        self._clock = clock
        self._new_id = new_id
        self._tasks: set[asyncio.Task[Instance]] = set()
        # FEAT03 group constraints, which the maintenance service keeps; the scheduler honours them as the
        # planner does. Wiring connects the service; alone, the cloud knows only the groups' policies.
        self.group_constraints: Callable[[str], GroupConstraints | None] = lambda _group: None

    @property
    def clock(self) -> Clock:
        """The clock operations stamp their events with."""
        return self._clock

    # -- start and stop ----------------------------------------------------

    async def bootstrap(self, topology: Topology, *, as_is: bool = False) -> None:
        """Load a topology into an empty map: place what has no host, give
        every instance a port, and persist it all (as state, not as events).

        ``as_is``: the topology is a VIM's own inventory (the OpenStack
        driver's), which is the truth: instances stay where the VIM put them
        (Nova's soft policies and its own capacity accounting are not
        second-guessed), and an instance without ports gets none."""
        check_references(topology)
        if any(True for _ in self.map.all()):
            raise Conflict("the cloud already holds resources; bootstrap needs an empty map")
        added: list[Resource] = []
        with self.map.changes.bulk():
            self._load(topology, added, as_is=as_is)
        batch = ChangeBatch()
        for resource in self.map.all():
            batch.upserts[(resource_type(resource), resource.ident)] = snapshot(resource)
        await self._committer.submit(batch)

    def _load(self, topology: Topology, added: list[Resource], *, as_is: bool) -> None:
        try:
            parents: list[Resource] = [*topology.switches, *topology.hosts, *topology.projects, *topology.groups]
            for resource in parents:
                self.map.add(resource)
                added.append(resource)
            ported = {p.instance for p in topology.ports}
            ports: list[Port] = list(topology.ports)
            for inst in topology.instances:
                if not as_is:
                    self._place_initial(inst)
                self.map.add(inst)
                added.append(inst)
                if inst.id not in ported and not as_is:
                    ports.append(Port(PortId(self._new_id()), inst.id, inst.project, inst.host))
            for port in ports:
                port.host = self.map.instance(port.instance).host
                self.map.add(port)
                added.append(port)
        except Exception:
            # All or nothing: a topology that cannot be placed leaves the map empty.
            for resource in reversed(added):
                self.map.remove(resource)
            raise

    def restore(self, state: Snapshot) -> list[Instance]:
        """Rebuild the map from the store; return the instances whose migration,
        build or evacuation a restart interrupted (call :meth:`recover` to settle them)."""
        self.map.add_all(state.resources)
        self.transactions.counter.last = state.last_seq
        return [i for i in self.map.instances() if i.state in (InstanceState.MIGRATING, InstanceState.BUILD)]

    async def recover(self, interrupted: Iterable[Instance]) -> None:
        """Return instances whose migration was cut off to where they ran; end the builds and evacuations cut
        off (their host was chosen and durable in their first step; the rest of a simulated build is its
        delay), so nothing stays BUILD for ever and a recovery resumed after the restart finds them placed."""
        interrupted = list(interrupted)
        migrations = self._changes("migration interrupted by a restart")
        builds = self._changes("build interrupted by a restart")
        for inst in interrupted:
            if inst.state is InstanceState.MIGRATING:
                migrations.update(inst, migrating_to=None, state=InstanceState.ACTIVE)
            else:
                builds.update(inst, state=InstanceState.ACTIVE)
        await self._commit(migrations)
        await self._commit(builds)

    async def aclose(self) -> None:
        """Cancel operations still under way; their first step stays durable."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for every operation under way to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- instances ---------------------------------------------------------

    async def boot(
        self,
        *,
        name: str,
        project: str,
        vcpus: int = 1,
        group: str | None = None,
        metadata: Mapping[str, str] | None = None,
        host: str | None = None,
        networks: Iterable[str] = ("data",),
    ) -> Operation:
        """Create an instance in BUILD on a scheduled (or given) host; it goes
        ACTIVE after ``boot_s``."""
        self.map.project(project)
        server_group = self.map.group(group) if group is not None else None
        if server_group is not None and server_group.project != project:
            raise NotFound("server group", server_group.id)
        request = PlacementRequest(vcpus=vcpus, rules=self._rules(group))
        target = self._place(request, host)
        inst = Instance(
            id=InstanceId(self._new_id()),
            name=name,
            project=ProjectId(project),
            host=target.name,
            vcpus=vcpus,
            state=InstanceState.BUILD,
            group=GroupId(group) if group is not None else None,
            metadata=dict(metadata or {}),
        )
        changes = self._changes("boot")
        changes.create(inst)
        for network in networks:
            changes.create(Port(PortId(self._new_id()), inst.id, inst.project, inst.host, network=network))
        await self._commit(changes)
        return self._spawn("boot", inst, self._finish_boot(inst))

    async def _finish_boot(self, inst: Instance) -> Instance:
        await asyncio.sleep(self.timings.boot_s)
        if self._current(inst) and inst.state is InstanceState.BUILD:
            changes = self._changes("boot")
            changes.update(inst, state=InstanceState.ACTIVE)
            await self._commit(changes)
        return inst

    async def delete(self, instance_id: str) -> None:
        inst = self.map.instance(instance_id)
        INSTANCE_TRANSITIONS.check(inst.id, inst.state, InstanceState.DELETED)
        changes = self._changes("delete")
        for port in self.map.ports_of(inst.id):
            changes.delete(port)
        changes.delete(inst)
        await self._commit(changes)

    async def migrate(self, instance_id: str, *, target: str | None = None, live: bool = False) -> Operation:
        """Move an instance to another host. Live migration needs it ACTIVE;
        cold migration takes ACTIVE or SHUTOFF. It keeps capacity on both hosts
        while MIGRATING and comes back to the state it left."""
        inst = self.map.instance(instance_id)
        allowed = {InstanceState.ACTIVE} if live else {InstanceState.ACTIVE, InstanceState.SHUTOFF}
        if inst.state not in allowed:
            kind = "live-migrate" if live else "migrate"
            raise Conflict(f"cannot {kind} instance {inst.id!r} in state {inst.state}")
        request = self._request_for(inst)
        if target is not None and target == inst.host:
            raise Conflict(f"instance {inst.id!r} already runs on {target}")
        destination = self._place(request, target, exclude=[inst.host] if inst.host else [])
        previous = inst.state
        changes = self._changes("live-migrate" if live else "migrate")
        changes.update(inst, state=InstanceState.MIGRATING, migrating_to=destination.name)
        await self._commit(changes)
        duration = self.timings.live_migration_s if live else self.timings.cold_migration_s
        return self._spawn("migrate", inst, self._finish_migration(inst, previous, duration, live))

    async def _finish_migration(self, inst: Instance, previous: InstanceState, duration: float, live: bool) -> Instance:
        await asyncio.sleep(duration)
        destination = inst.migrating_to
        if destination is None or inst.state is not InstanceState.MIGRATING or not self._current(inst):
            return inst
        target = self.map.host(destination)
        kind = "live-migrate" if live else "migrate"
        if target.status is not HostStatus.UP:
            # The reason reaches the instance's owner in its event log: no host name in it.
            changes = self._changes(f"{kind} failed: the destination host went {target.status}")
            changes.update(inst, state=previous, migrating_to=None)
        else:
            changes = self._changes(kind)
            changes.update(inst, state=previous, host=destination, migrating_to=None)
            self._move_ports(changes, inst)
        await self._commit(changes)
        return inst

    async def evacuate(self, instance_id: str, *, target: str | None = None) -> Operation:
        """Rebuild an instance of a failed host on another one (Nova's evacuate):
        allowed only when its host is DOWN or UNKNOWN."""
        inst = self.map.instance(instance_id)
        source = self.map.host(inst.host) if inst.host else None
        if source is not None and source.status not in (HostStatus.DOWN, HostStatus.UNKNOWN):
            raise Conflict(f"host {source.name} of instance {inst.id!r} is {source.status}; evacuate needs it down")
        INSTANCE_TRANSITIONS.check(inst.id, inst.state, InstanceState.BUILD)
        destination = self._place(self._request_for(inst), target, exclude=[inst.host] if inst.host else [])
        # As in Nova, a stopped instance is rebuilt stopped; any other comes back running.
        final = InstanceState.SHUTOFF if inst.state is InstanceState.SHUTOFF else InstanceState.ACTIVE
        changes = self._changes("evacuate")
        changes.update(inst, state=InstanceState.BUILD, host=destination.name)
        self._move_ports(changes, inst)
        await self._commit(changes)
        return self._spawn("evacuate", inst, self._finish_evacuate(inst, final))

    async def _finish_evacuate(self, inst: Instance, final: InstanceState) -> Instance:
        await asyncio.sleep(self.timings.evacuate_s)
        if self._current(inst) and inst.state is InstanceState.BUILD:
            changes = self._changes("evacuate")
            changes.update(inst, state=final)
            await self._commit(changes)
        return inst

    async def stop(self, instance_id: str) -> Instance:
        """Power an ACTIVE instance off (Nova's os-stop)."""
        return await self._power(instance_id, InstanceState.ACTIVE, InstanceState.SHUTOFF, "stop")

    async def start(self, instance_id: str) -> Instance:
        """Power a SHUTOFF instance on (Nova's os-start)."""
        return await self._power(instance_id, InstanceState.SHUTOFF, InstanceState.ACTIVE, "start")

    async def _power(self, instance_id: str, expected: InstanceState, state: InstanceState, kind: str) -> Instance:
        inst = self.map.instance(instance_id)
        if inst.state is not expected:
            raise Conflict(f"cannot {kind} instance {inst.id!r} in state {inst.state}")
        changes = self._changes(kind)
        changes.update(inst, state=state)
        await self._commit(changes)
        return inst

    async def reset_state(self, instance_id: str, state: InstanceState, *, reason: str | None = None) -> Instance:
        """Force an instance's state, as Nova's os-resetState does (ACTIVE or ERROR)."""
        inst = self.map.instance(instance_id)
        if state not in RESETTABLE_STATES:
            allowed = ", ".join(sorted(RESETTABLE_STATES))
            raise Conflict(f"reset-state sets only {allowed}, not {state}")
        if inst.state is InstanceState.MIGRATING:
            raise Conflict(f"instance {inst.id!r} is migrating; wait for it to end")
        changes = self._changes(reason or "reset-state")
        changes.update(inst, state=state)
        await self._commit(changes)
        return inst

    # -- hosts and ports ---------------------------------------------------

    async def set_host_enabled(self, host: str, enabled: bool, *, reason: str | None = None) -> Host:
        """Enable or disable scheduling on a host (Nova's service enable/disable)."""
        h = self.map.host(host)
        state = AdminState.ENABLED if enabled else AdminState.DISABLED
        changes = self._changes(reason or ("enable" if enabled else "disable"))
        changes.update(h, admin_state=state, disabled_reason=None if enabled else reason)
        await self._commit(changes)
        return h

    async def set_host_forced_down(self, host: str, forced_down: bool, *, reason: str | None = None) -> Host:
        """Mark a host's compute service down or up (Nova's force-down)."""
        h = self.map.host(host)
        changes = self._changes(reason or ("force-down" if forced_down else "force-up"))
        changes.update(h, forced_down=forced_down)
        await self._commit(changes)
        return h

    async def set_host_maintenance(self, host: str, in_maintenance: bool, *, reason: str | None = None) -> Host:
        """Flag a host as being maintained: the inspector takes no automatic fault action on it."""
        h = self.map.host(host)
        changes = self._changes(reason or ("maintenance on" if in_maintenance else "maintenance off"))
        changes.update(h, in_maintenance=in_maintenance)
        await self._commit(changes)
        return h

    async def set_host_reachable(self, host: str, reachable: bool, *, reason: str | None = None) -> Host:
        """Record whether the host's compute service is seen (UNKNOWN when not)."""
        h = self.map.host(host)
        changes = self._changes(reason or ("reachable" if reachable else "unreachable"))
        changes.update(h, reachable=reachable)
        await self._commit(changes)
        return h

    async def set_group_alarm_threshold(self, group: str, threshold: int) -> ServerGroup:
        """How many members must be down before the group's degraded alarm is raised."""
        if threshold < 1:
            raise Conflict(f"an alarm threshold is at least 1, not {threshold}")
        g = self.map.group(group)
        changes = self._changes("alarm threshold")
        changes.update(g, alarm_threshold=threshold)
        await self._commit(changes)
        return g

    async def set_port_status(self, port_id: str, status: DataPlaneStatus, *, reason: str | None = None) -> Port:
        port = self.map.port(port_id)
        changes = self._changes(reason or "data-plane status")
        changes.update(port, data_plane_status=status)
        await self._commit(changes)
        return port

    # -- internals ---------------------------------------------------------

    def _changes(self, reason: str) -> Changes:
        return self.transactions.begin(reason)

    async def _commit(self, changes: Changes) -> None:
        await self.transactions.commit(changes)

    def _current(self, inst: Instance) -> bool:
        """Whether ``inst`` is still in the map. An operation's last step checks
        it: an instance deleted while it was building (BUILD may go to DELETED)
        keeps its old fields, and updating it would put it back in the map's
        indices and the store."""
        try:
            return self.map.instance(inst.id) is inst
        except NotFound:
            return False

    def _rules(self, group_id: str | None) -> GroupRules | None:
        """The placement rules of a group: its policy, with the FEAT03 constraints maintenance keeps for it."""
        if group_id is None:
            return None
        return GroupRules.of(self.map.group(group_id), self.group_constraints(group_id))

    def _request_for(self, inst: Instance) -> PlacementRequest:
        return PlacementRequest(vcpus=inst.vcpus, rules=self._rules(inst.group), instance_id=inst.id)

    def _place(self, request: PlacementRequest, host: str | None, *, exclude: Iterable[str] = ()) -> Host:
        if host is None:
            return select_host(self.map, request, exclude=exclude)
        return check_host(self.map, self.map.host(host), request)

    def _place_initial(self, inst: Instance) -> None:
        """Place a topology instance: check a given host, or schedule one."""
        request = self._request_for(inst)
        if inst.host is None:
            inst.host = select_host(self.map, request).name
        else:
            check_host(self.map, self.map.host(inst.host), request, require_up=False)

    def _move_ports(self, changes: Changes, inst: Instance) -> None:
        """Ports follow their instance; rebound on a new host, their data plane is up."""
        for port in self.map.ports_of(inst.id):
            changes.update(port, host=inst.host, data_plane_status=DataPlaneStatus.ACTIVE)

    def _spawn(self, kind: str, inst: Instance, work: Coroutine[Any, Any, Instance]) -> Operation:
        task = asyncio.create_task(work, name=f"vigil.cloud.{kind}.{inst.id}")
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return Operation(instance=inst, done=task)

    def _ended(self, task: asyncio.Task[Instance]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("operation %s failed", task.get_name(), exc_info=task.exception())
