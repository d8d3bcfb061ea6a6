"""A topology: the whole set of resources a cloud starts from.

It is what ``examples/cloud.yaml`` describes and what the generator builds.
:func:`check_references` finds dangling names before anything is loaded, so
a bad file is refused as a whole with every problem listed.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from vigil.domain.errors import InvalidTopology
from vigil.domain.model import Host, Instance, Port, Project, ServerGroup, Switch


@dataclass(slots=True)
class Topology:
    switches: list[Switch] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    groups: list[ServerGroup] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)


def _duplicates(kind: str, idents: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for ident in idents:
        if ident in seen:
            problems.append(f"{kind} {ident!r} is defined twice")
        seen.add(ident)
    return problems


def check_references(topology: Topology) -> None:
    """Raise InvalidTopology listing every duplicate id and dangling reference."""
    t = topology
    problems: list[str] = []
    for kind, items in (
        ("switch", [s.name for s in t.switches]),
        ("host", [h.name for h in t.hosts]),
        ("project", [p.id for p in t.projects]),
        ("server group", [g.id for g in t.groups]),
        ("instance", [i.id for i in t.instances]),
        ("port", [p.id for p in t.ports]),
    ):
        problems += _duplicates(kind, items)
    switches = {s.name for s in t.switches}
    hosts = {h.name for h in t.hosts}
    projects = {p.id for p in t.projects}
    groups = {g.id: g for g in t.groups}
    instances = {i.id for i in t.instances}
    for h in t.hosts:
        if h.switch is not None and h.switch not in switches:
            problems.append(f"host {h.name!r} is behind unknown switch {h.switch!r}")
        if h.vcpus < 1:
            problems.append(f"host {h.name!r} has {h.vcpus} vCPUs; at least 1 is needed")
    for g in t.groups:
        if g.project not in projects:
            problems.append(f"server group {g.id!r} belongs to unknown project {g.project!r}")
    for i in t.instances:
        if i.project not in projects:
            problems.append(f"instance {i.id!r} belongs to unknown project {i.project!r}")
        if i.host is not None and i.host not in hosts:
            problems.append(f"instance {i.id!r} is on unknown host {i.host!r}")
        if i.group is not None:
            group = groups.get(i.group)
            if group is None:
                problems.append(f"instance {i.id!r} is in unknown server group {i.group!r}")
            elif group.project != i.project:
                problems.append(f"instance {i.id!r} is in server group {i.group!r} of another project")
        if i.vcpus < 1:
            problems.append(f"instance {i.id!r} has {i.vcpus} vCPUs; at least 1 is needed")
    for p in t.ports:
        if p.instance not in instances:
            problems.append(f"port {p.id!r} belongs to unknown instance {p.instance!r}")
    if problems:
        raise InvalidTopology("; ".join(problems))
