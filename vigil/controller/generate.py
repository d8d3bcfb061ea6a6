"""Generate a topology of any size: for demos, benchmarks and ``vigil serve --hosts``.

Placement is computed directly (instance ``k`` lands on host ``k // M``)
rather than through the scheduler, so 100,000 instances generate in linear
time. Each project gets one anti-affinity server group holding its first
two instances on different hosts, marked ``role: ACT`` and ``role: STBY``:
the redundant pair Doctor's fault and maintenance tests are built around.
"""

import random
import uuid

from vigil.domain.ids import GroupId, HostName, InstanceId, ProjectId, SwitchName
from vigil.domain.model import Host, Instance, Project, ServerGroup, Switch
from vigil.domain.states import GroupPolicy
from vigil.domain.topology import Topology


def generate(
    hosts: int,
    instances_per_host: int,
    projects: int,
    *,
    hosts_per_switch: int = 40,
    instance_vcpus: int = 1,
    host_vcpus: int | None = None,
    seed: int = 0,
) -> Topology:
    """A cloud of ``hosts`` hosts each running ``instances_per_host`` instances.

    Hosts get twice the vCPUs their instances use (at least 2) unless
    ``host_vcpus`` says otherwise, leaving room to migrate and evacuate.
    """
    if hosts < 1 or instances_per_host < 0 or projects < 1 or hosts_per_switch < 1:
        raise ValueError("need at least one host, one project and one host per switch")
    rng = random.Random(seed)

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    vcpus = host_vcpus if host_vcpus is not None else max(2, 2 * instances_per_host * instance_vcpus)
    topo = Topology()
    racks = (hosts + hosts_per_switch - 1) // hosts_per_switch
    topo.switches = [Switch(SwitchName(f"tor-{r + 1:03d}")) for r in range(racks)]
    topo.hosts = [
        Host(
            name=HostName(f"compute-{h + 1:05d}"),
            zone=f"az-{h // hosts_per_switch % 3 + 1}",
            switch=topo.switches[h // hosts_per_switch].name,
            vcpus=vcpus,
        )
        for h in range(hosts)
    ]
    topo.projects = [Project(ProjectId(f"project-{p + 1:03d}"), f"Project {p + 1}") for p in range(projects)]
    groups = {
        p.id: ServerGroup(GroupId(new_id()), f"{p.id}-ha", p.id, GroupPolicy.ANTI_AFFINITY) for p in topo.projects
    }
    topo.groups = list(groups.values())
    members: dict[ProjectId, list[HostName]] = {}
    serial: dict[ProjectId, int] = {}
    for k in range(hosts * instances_per_host):
        host = topo.hosts[k // instances_per_host].name
        project = topo.projects[k % projects].id
        serial[project] = serial.get(project, 0) + 1
        inst = Instance(
            id=InstanceId(new_id()),
            name=f"{project}-vm-{serial[project]:05d}",
            project=project,
            host=host,
            vcpus=instance_vcpus,
        )
        placed = members.setdefault(project, [])
        if len(placed) < 2 and host not in placed:
            placed.append(host)
            inst.group = groups[project].id
            inst.metadata = {"role": "ACT" if len(placed) == 1 else "STBY"}
        topo.instances.append(inst)
    return topo
