"""Nova's and Neutron's view of the cloud, read into Vigil's domain as a :class:`~vigil.domain.topology.Topology`.

What is read, and at which microversion:

* compute services, ``GET /os-services?binary=nova-compute`` (2.53: UUIDs):
  each a host with its zone, ``status`` (the admin state and its reason),
  ``forced_down``, and ``state`` (up or down: Nova's liveness, Vigil's
  ``reachable``);
* hypervisors, ``GET /os-hypervisors/detail`` (2.53; ``vcpus`` is gone
  from 2.88): each host's vCPUs;
* servers of all projects, ``GET /servers/detail?all_tenants=1`` (2.73:
  the flavor is embedded, so ``vcpus`` needs no flavor lookup), paged by
  ``marker``: project, host (``OS-EXT-SRV-ATTR:host``, admin only),
  status, metadata;
* server groups of all projects, ``GET /os-server-groups?all_projects=1``
  (2.64: ``policy`` is one string): policy and members;
* Neutron ports of servers (``device_owner`` ``compute:*``), paged by
  ``marker``: instance, project, bound host, network, ``data_plane_status``;
* project names from Keystone where the credentials may list projects,
  else the ids.

Where Vigil's model is coarser than Nova's, the mapping is stated here:
Nova's transient and paused states (REBOOT, PAUSED, SUSPENDED, RESCUE, ...)
count as ACTIVE, RESIZE and VERIFY_RESIZE as MIGRATING, REBUILD (an
evacuation under way, or a tenant's rebuild) as BUILD, as the embedded
cloud's evacuation shows it; soft
(anti-)affinity counts as the strict policy, as Vigil's placement has no
soft rules; servers with no host (shelved, never scheduled) and deleted
ones are left out.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from vigil.domain.ids import GroupId, HostName, InstanceId, PortId, ProjectId
from vigil.domain.model import Host, Instance, Port, Project, ServerGroup
from vigil.domain.states import AdminState, DataPlaneStatus, GroupPolicy, InstanceState
from vigil.domain.topology import Topology
from vigil.vim.openstack.session import ApiError, OpenStackSession

log = logging.getLogger(__name__)

SERVICES_MICROVERSION = "2.53"
SERVERS_MICROVERSION = "2.73"
GROUPS_MICROVERSION = "2.64"
# Nova looks up the ports of a whole page of servers in one Neutron query by device_id; at 152 servers the
# stack's Neutron refused that URL (414 URI Too Long) and Nova answered 500. A page of 100 stays well inside
# the 8 KiB request line that Apache and eventlet allow by default.
PAGE = 100

_STATES = {
    "ACTIVE": InstanceState.ACTIVE,
    "BUILD": InstanceState.BUILD,
    "SHUTOFF": InstanceState.SHUTOFF,
    "ERROR": InstanceState.ERROR,
    "MIGRATING": InstanceState.MIGRATING,
    "REBUILD": InstanceState.BUILD,  # built again (an evacuation, as the embedded cloud's): not running yet
    "RESIZE": InstanceState.MIGRATING,
    "VERIFY_RESIZE": InstanceState.MIGRATING,
    "REVERT_RESIZE": InstanceState.MIGRATING,
}
_POLICIES = {
    "anti-affinity": GroupPolicy.ANTI_AFFINITY,
    "soft-anti-affinity": GroupPolicy.ANTI_AFFINITY,
    "affinity": GroupPolicy.AFFINITY,
    "soft-affinity": GroupPolicy.AFFINITY,
}


def instance_state(status: str) -> InstanceState:
    """Vigil's state for a Nova server ``status`` (see the module's mapping)."""
    return _STATES.get(status.upper(), InstanceState.ACTIVE)


async def _paged(
    session: OpenStackSession, service: str, path: str, key: str, *, microversion: str | None = None, **params: Any
) -> AsyncIterator[dict[str, Any]]:
    """Every item of a collection, a page at a time (``limit`` and ``marker``, as Nova and Neutron page)."""
    marker: str | None = None
    while True:
        query = {**params, "limit": PAGE, **({"marker": marker} if marker else {})}
        items: list[dict[str, Any]] = (await session.get(service, path, microversion=microversion, **query))[key]
        for item in items:
            yield item
        if len(items) < PAGE:
            return
        marker = items[-1]["id"]


async def hosts(session: OpenStackSession) -> list[Host]:
    services = (
        await session.get("compute", "/os-services", microversion=SERVICES_MICROVERSION, binary="nova-compute")
    )["services"]
    hypervisors = (await session.get("compute", "/os-hypervisors/detail", microversion=SERVICES_MICROVERSION))[
        "hypervisors"
    ]
    vcpus = {h["service"]["host"]: int(h.get("vcpus") or 0) for h in hypervisors}
    return [
        Host(
            HostName(s["host"]),
            zone=s.get("zone") or "nova",
            vcpus=vcpus.get(s["host"], 0),
            admin_state=AdminState.DISABLED if s["status"] == "disabled" else AdminState.ENABLED,
            forced_down=bool(s.get("forced_down")),
            reachable=s.get("state") == "up",
            disabled_reason=s.get("disabled_reason"),
        )
        for s in sorted(services, key=lambda s: s["host"])
    ]


async def servers(session: OpenStackSession) -> list[dict[str, Any]]:
    return [
        s
        async for s in _paged(
            session, "compute", "/servers/detail", "servers", microversion=SERVERS_MICROVERSION, all_tenants=1
        )
    ]


async def groups(session: OpenStackSession) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        await session.get("compute", "/os-server-groups", microversion=GROUPS_MICROVERSION, all_projects=1)
    )["server_groups"]
    return found


async def ports(session: OpenStackSession) -> list[dict[str, Any]]:
    return [
        p
        async for p in _paged(session, "network", "/v2.0/ports", "ports")
        if str(p.get("device_owner", "")).startswith("compute:")
    ]


def port(p: Mapping[str, Any]) -> Port:
    """A Neutron port as Vigil's :class:`~vigil.domain.model.Port`."""
    return Port(
        PortId(p["id"]),
        InstanceId(p["device_id"]),
        ProjectId(p.get("project_id") or p["tenant_id"]),
        HostName(p["binding:host_id"]) if p.get("binding:host_id") else None,
        network=p.get("network_id") or "data",
        data_plane_status=DataPlaneStatus.DOWN if p.get("data_plane_status") == "DOWN" else DataPlaneStatus.ACTIVE,
    )


async def project_names(session: OpenStackSession) -> dict[str, str]:
    """Names by id, where the credentials may list projects; empty otherwise (ids stand in)."""
    try:
        base = await session.endpoint("identity")  # catalogs list it with /v3 or without a version
        found = (await session.get("identity", "/projects" if base.endswith("/v3") else "/v3/projects"))["projects"]
    except ApiError:
        return {}
    return {p["id"]: p["name"] for p in found}


async def first_topology(session: OpenStackSession, *, attempts: int = 8, delay_s: float = 1.0) -> Topology:
    """The inventory at Vigil's first start, read again while Nova or Neutron answer 5xx or not at all (a
    service restarting, Nova's Neutron client not yet authenticated), so a passing error does not stop the
    start; a 4xx (wrong credentials, policy) is not passing and is raised at once."""
    for attempt in range(1, attempts + 1):
        try:
            return await read_topology(session)
        except ApiError as exc:
            if (exc.status is not None and exc.status < 500) or attempt == attempts:
                raise
            log.warning("reading the inventory failed (%s); again in %.0f s", exc, delay_s * attempt)
            await asyncio.sleep(delay_s * attempt)
    raise AssertionError("unreachable")


async def read_topology(session: OpenStackSession) -> Topology:
    """The cloud as Nova and Neutron see it now."""
    host_list = await hosts(session)
    known_hosts = {h.name for h in host_list}
    server_list = await servers(session)
    group_list = await groups(session)
    names = await project_names(session)
    member_of = {m: g["id"] for g in group_list for m in g.get("members", [])}
    instances = [
        Instance(
            InstanceId(s["id"]),
            s.get("name") or s["id"],
            ProjectId(s["tenant_id"]),
            HostName(s["OS-EXT-SRV-ATTR:host"]),
            vcpus=int((s.get("flavor") or {}).get("vcpus") or 1),
            state=instance_state(s["status"]),
            group=GroupId(member_of[s["id"]]) if s["id"] in member_of else None,
            metadata={str(k): str(v) for k, v in (s.get("metadata") or {}).items()},
        )
        for s in server_list
        if s.get("OS-EXT-SRV-ATTR:host") in known_hosts and s["status"] != "DELETED"
    ]
    present = {i.id for i in instances}
    project_ids = sorted({i.project for i in instances} | {g["project_id"] for g in group_list})
    port_list = [port(p) for p in await ports(session) if p.get("device_id") in present]
    return Topology(
        hosts=host_list,
        projects=[Project(ProjectId(p), names.get(p, p)) for p in project_ids],
        groups=[
            ServerGroup(GroupId(g["id"]), g["name"], ProjectId(g["project_id"]), _POLICIES[g["policy"]])
            for g in group_list
            if g.get("policy") in _POLICIES
        ],
        instances=instances,
        ports=port_list,
    )
