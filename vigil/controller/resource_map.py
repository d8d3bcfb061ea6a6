"""The resource map: every resource Vigil knows, and the indices that answer
"what is affected" without a scan.

Doctor's inspector asks the controller's map which virtual resources sit on a
failed physical one. Here each such question (instances on a host, ports of
an instance, hosts behind a switch, members of a group, a project's
instances) is one dictionary lookup whose cost grows with the answer, not
with the size of the cloud. The map also counts the vCPUs used on each host,
so the scheduler reads free capacity in O(1).

All changes go through :meth:`ResourceMap.add`, :meth:`ResourceMap.remove`
and :meth:`ResourceMap.update`: they check references and state transitions
and keep the indices true. The map does no I/O; the controller persists and
publishes what ``update`` reports as changed.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import fields as dataclass_fields
from typing import Any, TypeVar

from vigil.domain.changelog import ChangeLog
from vigil.domain.errors import AlreadyExists, Conflict, NotFound
from vigil.domain.ids import GroupId, HostName, InstanceId, PortId, ProjectId, SwitchName
from vigil.domain.model import (
    RESOURCE_TYPES,
    Host,
    Instance,
    Port,
    Project,
    Resource,
    ServerGroup,
    Switch,
    resource_type,
)
from vigil.domain.states import (
    ADMIN_TRANSITIONS,
    DATA_PLANE_TRANSITIONS,
    INSTANCE_TRANSITIONS,
    TransitionTable,
)

Change = tuple[Any, Any]
R = TypeVar("R", bound=Resource)

# Which field of which resource is a state machine, and its table.
_STATE_FIELDS: dict[tuple[type, str], TransitionTable[Any]] = {
    (Instance, "state"): INSTANCE_TRANSITIONS,
    (Host, "admin_state"): ADMIN_TRANSITIONS,
    (Port, "data_plane_status"): DATA_PLANE_TRANSITIONS,
}

# Fields that identify a resource; they never change.
_KEY_FIELDS = {"id", "name"}

# The stored fields of each resource type. Only these may be updated: a
# derived property (``Host.status``, ``ident``) would pass ``hasattr`` but fail
# in ``setattr`` after other fields had already changed.
_FIELDS: dict[type, frozenset[str]] = {cls: frozenset(f.name for f in dataclass_fields(cls)) for cls in RESOURCE_TYPES}


class ResourceMap:
    """In-memory map of the cloud with secondary indices."""

    def __init__(self) -> None:
        self._switches: dict[SwitchName, Switch] = {}
        self._hosts: dict[HostName, Host] = {}
        self._projects: dict[ProjectId, Project] = {}
        self._groups: dict[GroupId, ServerGroup] = {}
        self._instances: dict[InstanceId, Instance] = {}
        self._ports: dict[PortId, Port] = {}
        # Secondary indices: inner dicts keep insertion order and O(1) removal.
        self._on_host: defaultdict[HostName, dict[InstanceId, Instance]] = defaultdict(dict)
        self._behind: defaultdict[SwitchName, dict[HostName, Host]] = defaultdict(dict)
        self._members: defaultdict[GroupId, dict[InstanceId, Instance]] = defaultdict(dict)
        self._of_project: defaultdict[ProjectId, dict[InstanceId, Instance]] = defaultdict(dict)
        self._ports_of: defaultdict[InstanceId, dict[PortId, Port]] = defaultdict(dict)
        self._used: defaultdict[HostName, int] = defaultdict(int)
        # Every add, update and remove, for a reader of another source of truth (the OpenStack reconciliation).
        self.changes = ChangeLog()

    # -- lookups -----------------------------------------------------------

    def switch(self, name: str) -> Switch:
        return _get(self._switches, "switch", name)

    def host(self, name: str) -> Host:
        return _get(self._hosts, "host", name)

    def project(self, ident: str) -> Project:
        return _get(self._projects, "project", ident)

    def group(self, ident: str) -> ServerGroup:
        return _get(self._groups, "server group", ident)

    def instance(self, ident: str) -> Instance:
        return _get(self._instances, "instance", ident)

    def port(self, ident: str) -> Port:
        return _get(self._ports, "port", ident)

    def has(self, kind: type[Resource], ident: str) -> bool:
        """Whether the map holds a resource of ``kind`` (Host, Instance, ...) with this id or name."""
        tables: dict[type, dict[Any, Any]] = {
            Switch: self._switches,
            Host: self._hosts,
            Project: self._projects,
            ServerGroup: self._groups,
            Instance: self._instances,
            Port: self._ports,
        }
        return ident in tables[kind]

    def switches(self) -> list[Switch]:
        return list(self._switches.values())

    def hosts(self) -> list[Host]:
        return list(self._hosts.values())

    def projects(self) -> list[Project]:
        return list(self._projects.values())

    def groups(self, project: str | None = None) -> list[ServerGroup]:
        return [g for g in self._groups.values() if project is None or g.project == project]

    def instances(self, project: str | None = None) -> list[Instance]:
        if project is None:
            return list(self._instances.values())
        return list(self._of_project.get(ProjectId(project), {}).values())

    def ports(self, project: str | None = None) -> list[Port]:
        if project is None:
            return list(self._ports.values())
        return [p for i in self.instances(project) for p in self.ports_of(i.id)]

    def instances_on(self, host: str) -> list[Instance]:
        """Instances running on ``host`` (not those migrating to it)."""
        return list(self._on_host.get(HostName(host), {}).values())

    def ports_of(self, instance: str) -> list[Port]:
        return list(self._ports_of.get(InstanceId(instance), {}).values())

    def ports_on(self, host: str) -> list[Port]:
        return [p for i in self.instances_on(host) for p in self.ports_of(i.id)]

    def hosts_behind(self, switch: str) -> list[Host]:
        return list(self._behind.get(SwitchName(switch), {}).values())

    def members(self, group: str) -> list[Instance]:
        return list(self._members.get(GroupId(group), {}).values())

    def used_vcpus(self, host: str) -> int:
        """vCPUs held on ``host`` by instances on it and instances migrating to it."""
        return self._used.get(HostName(host), 0)

    def free_vcpus(self, host: str) -> int:
        return self.host(host).vcpus - self.used_vcpus(host)

    def counts(self) -> dict[str, int]:
        return {
            "switches": len(self._switches),
            "hosts": len(self._hosts),
            "projects": len(self._projects),
            "server_groups": len(self._groups),
            "instances": len(self._instances),
            "ports": len(self._ports),
        }

    def all(self) -> Iterator[Resource]:
        """Every resource, parents before children (the order ``add`` needs)."""
        yield from self._switches.values()
        yield from self._hosts.values()
        yield from self._projects.values()
        yield from self._groups.values()
        yield from self._instances.values()
        yield from self._ports.values()

    # -- changes -----------------------------------------------------------

    def add(self, resource: Resource) -> None:
        """Insert a resource whose parents are already in the map."""
        self._insert(resource)
        self.changes.mark(resource.ident)

    def _insert(self, resource: Resource) -> None:
        match resource:
            case Switch():
                _insert(self._switches, "switch", resource.name, resource)
            case Host():
                if resource.switch is not None:
                    self.switch(resource.switch)
                _insert(self._hosts, "host", resource.name, resource)
                if resource.switch is not None:
                    self._behind[resource.switch][resource.name] = resource
            case Project():
                _insert(self._projects, "project", resource.id, resource)
            case ServerGroup():
                self.project(resource.project)
                _insert(self._groups, "server group", resource.id, resource)
            case Instance():
                self.project(resource.project)
                for host in (resource.host, resource.migrating_to):
                    if host is not None:
                        self.host(host)
                if resource.group is not None:
                    self.group(resource.group)
                _insert(self._instances, "instance", resource.id, resource)
                self._index_instance(resource, +1)
            case Port():
                self.instance(resource.instance)
                _insert(self._ports, "port", resource.id, resource)
                self._ports_of[resource.instance][resource.id] = resource

    def add_all(self, resources: Iterable[Resource]) -> None:
        """Insert many (a restore): logged as one change of everything."""
        with self.changes.bulk():
            for resource in resources:
                self.add(resource)

    def remove(self, resource: Resource) -> None:
        """Remove a resource that nothing else refers to any more."""
        self._delete(resource)
        self.changes.mark(resource.ident)

    def _delete(self, resource: Resource) -> None:
        match resource:
            case Switch():
                if self._behind.get(resource.name):
                    raise Conflict(f"switch {resource.name!r} still has hosts behind it")
                del self._switches[resource.name]
            case Host():
                if self._on_host.get(resource.name) or self._used.get(resource.name):
                    raise Conflict(f"host {resource.name!r} still has instances")
                del self._hosts[resource.name]
                if resource.switch is not None:
                    self._behind[resource.switch].pop(resource.name, None)
            case Project():
                if self._of_project.get(resource.id):
                    raise Conflict(f"project {resource.id!r} still has instances")
                # Groups are not indexed by project; removing a project is rare.
                if any(g.project == resource.id for g in self._groups.values()):
                    raise Conflict(f"project {resource.id!r} still has server groups")
                del self._projects[resource.id]
            case ServerGroup():
                if self._members.get(resource.id):
                    raise Conflict(f"server group {resource.id!r} still has members")
                del self._groups[resource.id]
            case Instance():
                if self._ports_of.get(resource.id):
                    raise Conflict(f"instance {resource.id!r} still has ports")
                del self._instances[resource.id]
                self._index_instance(resource, -1)
            case Port():
                del self._ports[resource.id]
                self._unindex_port(resource)

    def update(self, resource: R, **fields: Any) -> dict[str, Change]:
        """Set fields of a resource in the map; return ``{field: (old, new)}`` of what changed.

        State fields are checked against their transition table before
        anything is changed, so a refused update leaves the resource as it was.
        """
        kind = resource_type(resource)
        changes: dict[str, Change] = {}
        for name, new in fields.items():
            if name in _KEY_FIELDS or name not in _FIELDS[type(resource)]:
                raise AttributeError(f"{kind} has no changeable field {name!r}")
            old = getattr(resource, name)
            if old == new:
                continue
            table = _STATE_FIELDS.get((type(resource), name))
            if table is not None:
                table.check(resource.ident, old, new)
            changes[name] = (old, new)
        if not changes:
            return changes
        self._check_references(resource, changes)
        if isinstance(resource, Instance):
            self._index_instance(resource, -1)
        elif isinstance(resource, Host) and "switch" in changes and resource.switch is not None:
            self._behind[resource.switch].pop(resource.name, None)
        elif isinstance(resource, Port) and "instance" in changes:
            self._unindex_port(resource)
        for name, (_, new) in changes.items():
            setattr(resource, name, new)
        if isinstance(resource, Instance):
            self._index_instance(resource, +1)
        elif isinstance(resource, Host) and "switch" in changes and resource.switch is not None:
            self._behind[resource.switch][resource.name] = resource
        elif isinstance(resource, Port) and "instance" in changes:
            self._ports_of[resource.instance][resource.id] = resource
        self.changes.mark(resource.ident)
        return changes

    # -- internals ---------------------------------------------------------

    def _check_references(self, resource: Resource, changes: dict[str, Change]) -> None:
        for name, (_, new) in changes.items():
            if new is None:
                continue
            if name in ("host", "migrating_to"):
                self.host(new)
            elif name == "group":
                self.group(new)
            elif name == "switch":
                self.switch(new)
            elif name == "project":
                self.project(new)
            elif name == "instance":
                self.instance(new)

    def _unindex_port(self, port: Port) -> None:
        bucket = self._ports_of.get(port.instance)
        if bucket is not None:
            bucket.pop(port.id, None)
            if not bucket:
                del self._ports_of[port.instance]

    def _index_instance(self, inst: Instance, sign: int) -> None:
        """Add (+1) or remove (-1) an instance from every index and vCPU count."""
        indices: list[tuple[defaultdict[Any, dict[InstanceId, Instance]], Any]] = [
            (self._on_host, inst.host),
            (self._members, inst.group),
            (self._of_project, inst.project),
        ]
        for index, key in indices:
            if key is None:
                continue
            if sign > 0:
                index[key][inst.id] = inst
            else:
                bucket = index[key]
                bucket.pop(inst.id, None)
                if not bucket:
                    del index[key]
        for host in (inst.host, inst.migrating_to):
            if host is not None:
                self._used[host] += sign * inst.vcpus


def _get(table: dict[Any, R], kind: str, ident: str) -> R:
    try:
        return table[ident]
    except KeyError:
        raise NotFound(kind, ident) from None


def _insert(table: dict[Any, R], kind: str, ident: str, resource: R) -> None:
    if ident in table:
        raise AlreadyExists(kind, ident)
    table[ident] = resource
