"""Read a topology from a YAML file (``examples/cloud.yaml`` is one).

The file has one section per resource kind, each a list of entries::

    switches:      [{name: tor-1}]
    hosts:         [{name: compute-1, zone: az-1, switch: tor-1, vcpus: 8,
                     admin_state: enabled, forced_down: false}]
    projects:      [{id: vnf-a, name: VNF A}]
    server_groups: [{id: vnf-a-ha, name: app-ha, project: vnf-a, policy: anti-affinity,
                     alarm_threshold: 1}]
    instances:     [{id: app-act, name: app-act, project: vnf-a, vcpus: 2,
                     group: vnf-a-ha, host: compute-1, state: ACTIVE, metadata: {role: ACT}}]
    ports:         [{id: app-act-data, instance: app-act, network: data}]

Every section may be left out. An instance without ``id`` gets a generated
UUID (give it an ``id`` if a port refers to it); one without ``host`` is
placed by the scheduler when the embedded cloud bootstraps the topology, and
an instance without explicit ports gets one default port there too.

Reading is strict: unknown fields, wrong types (``vcpus: "8"``), duplicate
keys and dangling references are refused. A bad file is refused as a whole:
:class:`~vigil.domain.errors.InvalidTopology` names every offending entry by
its section, position and name. Errors of form (schema) are reported first;
references are checked only once the form is right, so a misspelt host does
not also show up as a dangling reference of every instance on it.
"""

import io
import os
import uuid
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from vigil.domain.errors import InvalidTopology
from vigil.domain.ids import GroupId, HostName, InstanceId, PortId, ProjectId, SwitchName
from vigil.domain.model import Host, Instance, Port, Project, ServerGroup, Switch
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState
from vigil.domain.topology import Topology, check_references

__all__ = ["load_topology", "parse_topology"]

_SafeLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader (libyaml's when available) that refuses a mapping with
    the same key twice, which PyYAML would otherwise resolve silently to the
    last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        result: dict[Hashable, Any] = super().construct_mapping(node, deep)
        return result


# -- the file's schema -----------------------------------------------------

Text = Annotated[str, Field(strict=True)]
Name = Annotated[str, Field(strict=True, min_length=1)]
VCpus = Annotated[int, Field(strict=True, ge=1)]

# The states an instance may start in: the others are steps of operations
# (BUILD, MIGRATING) or its end (DELETED), which a topology cannot start from.
_INITIAL_STATES = (InstanceState.ACTIVE, InstanceState.SHUTOFF, InstanceState.ERROR)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SwitchEntry(_Entry):
    name: Name


class HostEntry(_Entry):
    name: Name
    zone: Name = "nova"
    switch: Name | None = None
    vcpus: VCpus = 8
    admin_state: AdminState = AdminState.ENABLED
    forced_down: Annotated[bool, Field(strict=True)] = False
    disabled_reason: Text | None = None
    in_maintenance: Annotated[bool, Field(strict=True)] = False


class ProjectEntry(_Entry):
    id: Name
    name: Name


class ServerGroupEntry(_Entry):
    id: Name
    name: Name
    project: Name
    policy: GroupPolicy = GroupPolicy.ANTI_AFFINITY
    alarm_threshold: Annotated[int, Field(strict=True, ge=1)] = 1


class InstanceEntry(_Entry):
    id: Name | None = None
    name: Name
    project: Name
    vcpus: VCpus = 1
    group: Name | None = None
    host: Name | None = None
    state: InstanceState = InstanceState.ACTIVE
    metadata: dict[Text, Text] = Field(default_factory=dict)

    @field_validator("state")
    @classmethod
    def _initial_state(cls, state: InstanceState) -> InstanceState:
        if state not in _INITIAL_STATES:
            allowed = ", ".join(_INITIAL_STATES)
            raise ValueError(f"an instance cannot start in state {state}; use one of {allowed}")
        return state


class PortEntry(_Entry):
    id: Name | None = None
    instance: Name
    network: Name = "data"
    data_plane_status: DataPlaneStatus = DataPlaneStatus.ACTIVE


class TopologyFile(_Entry):
    switches: list[SwitchEntry] = Field(default_factory=list)
    hosts: list[HostEntry] = Field(default_factory=list)
    projects: list[ProjectEntry] = Field(default_factory=list)
    server_groups: list[ServerGroupEntry] = Field(default_factory=list)
    instances: list[InstanceEntry] = Field(default_factory=list)
    ports: list[PortEntry] = Field(default_factory=list)


# -- reading ---------------------------------------------------------------


def _new_id() -> str:
    return str(uuid.uuid4())


def load_topology(path: str | os.PathLike[str], *, new_id: Callable[[], str] = _new_id) -> Topology:
    """Read and check the topology file at ``path``.

    Raises InvalidTopology naming every problem of the file; an unreadable
    file raises the ``OSError`` of opening it.
    """
    path = Path(path)
    return parse_topology(path.read_text(encoding="utf-8"), source=str(path), new_id=new_id)


def parse_topology(text: str, *, source: str = "<topology>", new_id: Callable[[], str] = _new_id) -> Topology:
    """Parse and check a topology given as YAML text; ``source`` names it in errors."""
    stream = io.StringIO(text)
    setattr(stream, "name", source)  # noqa: B010 - YAML's error marks quote the stream's name
    try:
        data = yaml.load(stream, Loader=_Loader)  # _Loader is a safe loader
    except yaml.YAMLError as exc:
        raise InvalidTopology(f"{source} is not valid YAML: {exc}") from exc
    if data is None:
        raise InvalidTopology(f"{source} is empty")
    if not isinstance(data, dict):
        raise InvalidTopology(f"{source} must be a mapping of sections, not a {type(data).__name__}")
    try:
        parsed = TopologyFile.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, data) for error in exc.errors()]
        raise InvalidTopology(f"{source}: " + "; ".join(problems)) from exc
    topology, placeholders = _build(parsed)
    try:
        check_references(topology)
    except InvalidTopology as exc:
        raise InvalidTopology(f"{source}: {exc}") from exc
    _assign_ids(topology, placeholders, new_id)
    return topology


def _build(parsed: TopologyFile) -> tuple[Topology, set[str]]:
    """Domain resources from checked entries, and the placeholder ids given.

    Instances and ports without an id get a placeholder naming their entry
    (``<instances[3] app-act>``), so a reference error points at it;
    :func:`_assign_ids` replaces them once the references are known good.
    """
    placeholders: set[str] = set()

    def ident(given: str | None, section: str, index: int, name: str) -> str:
        if given is not None:
            return given
        placeholder = f"<{section}[{index}] {name}>"
        placeholders.add(placeholder)
        return placeholder

    topology = Topology()
    topology.switches = [Switch(SwitchName(s.name)) for s in parsed.switches]
    topology.hosts = [
        Host(
            name=HostName(h.name),
            zone=h.zone,
            switch=SwitchName(h.switch) if h.switch is not None else None,
            vcpus=h.vcpus,
            admin_state=h.admin_state,
            forced_down=h.forced_down,
            disabled_reason=h.disabled_reason,
            in_maintenance=h.in_maintenance,
        )
        for h in parsed.hosts
    ]
    topology.projects = [Project(ProjectId(p.id), p.name) for p in parsed.projects]
    topology.groups = [
        ServerGroup(GroupId(g.id), g.name, ProjectId(g.project), g.policy, alarm_threshold=g.alarm_threshold)
        for g in parsed.server_groups
    ]
    topology.instances = [
        Instance(
            id=InstanceId(ident(i.id, "instances", n, i.name)),
            name=i.name,
            project=ProjectId(i.project),
            host=HostName(i.host) if i.host is not None else None,
            vcpus=i.vcpus,
            state=i.state,
            group=GroupId(i.group) if i.group is not None else None,
            metadata=dict(i.metadata),
        )
        for n, i in enumerate(parsed.instances)
    ]
    project_of = {i.id: i.project for i in topology.instances}
    topology.ports = [
        Port(
            id=PortId(ident(p.id, "ports", n, p.network)),
            instance=InstanceId(p.instance),
            # An unknown instance is reported by check_references; the port
            # is never used then, so its project does not matter.
            project=project_of.get(InstanceId(p.instance), ProjectId("")),
            host=None,
            network=p.network,
            data_plane_status=p.data_plane_status,
        )
        for n, p in enumerate(parsed.ports)
    ]
    return topology, placeholders


def _assign_ids(topology: Topology, placeholders: set[str], new_id: Callable[[], str]) -> None:
    for inst in topology.instances:
        if inst.id in placeholders:
            inst.id = InstanceId(new_id())
    for port in topology.ports:
        if port.id in placeholders:
            port.id = PortId(new_id())


def _describe(error: ErrorDetails, data: dict[str, Any]) -> str:
    """One schema error as a sentence naming the entry: ``hosts[2] (compute-3): vcpus: ...``."""
    loc = error["loc"]
    where: list[str] = []
    field_path: list[str] = []
    if loc:
        section = str(loc[0])
        where.append(section)
        rest = list(loc[1:])
        if rest and isinstance(rest[0], int):
            index = int(rest.pop(0))
            where[0] = f"{section}[{index}]"
            label = _entry_label(data.get(section), index)
            if label:
                where.append(f"({label})")
        field_path = [str(part) for part in rest]
    kind = error["type"]
    if kind == "extra_forbidden":
        if not field_path and len(where) == 1 and "[" not in where[0]:
            known = ", ".join(TopologyFile.model_fields)
            return f"unknown section {where[0]!r} (known: {known})"
        target = where[:]
        unknown = field_path.pop() if field_path else "?"
        if field_path:
            target.append(".".join(field_path))
        return f"{' '.join(target)}: unknown field {unknown!r}"
    if kind == "missing":
        missing = field_path.pop() if field_path else "?"
        target = where[:] + ([".".join(field_path)] if field_path else [])
        return f"{' '.join(target)}: missing field {missing!r}"
    message = error["msg"]
    if kind == "model_type":
        message = "an entry must be a mapping of fields"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    subject = " ".join(where) + (": " + ".".join(field_path) if field_path else "")
    return f"{subject}: {message} (got {error['input']!r})"


def _entry_label(entries: Any, index: int) -> str | None:
    """The name or id of an entry as written, to say which one is wrong."""
    if not isinstance(entries, list) or not 0 <= index < len(entries):
        return None
    entry = entries[index]
    if not isinstance(entry, dict):
        return None
    for key in ("id", "name"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None
