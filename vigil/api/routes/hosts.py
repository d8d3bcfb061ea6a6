"""Compute hosts: admin only, as Nova's os-hypervisors and os-services are."""

from typing import Annotated

from fastapi import APIRouter, Query

from vigil.api.contract import errors
from vigil.api.deps import Admin, Context
from vigil.api.schemas import HostAction, HostOut
from vigil.api.views import Limit, Marker, host_view, page
from vigil.domain.states import HostStatus

router = APIRouter(prefix="/hosts", tags=["hosts"])


@router.get("", summary="List hosts")
async def list_hosts(
    ctx: Context,
    _: Admin,
    status: Annotated[HostStatus | None, Query()] = None,
    switch: str | None = None,
    zone: str | None = None,
    limit: int = Limit,
    marker: str | None = Marker,
) -> dict[str, list[HostOut]]:
    """List the compute hosts with their capacity (`vcpus`, `vcpus_used`, `instances`), admin state, `forced_down`,
    `reachable`, `in_maintenance` and `status`, Nova's host_status derived from them (forced down: DOWN; disabled:
    MAINTENANCE; unreachable: UNKNOWN; otherwise UP).

    Admin only. Filter by `status`, `switch` or `zone`; page with `limit` and `marker`, the name of the last host of
    the previous page (a marker that names no host is a 404)."""
    rmap = ctx.cloud.map
    hosts = [
        h
        for h in rmap.hosts()
        if (status is None or h.status is status)
        and (switch is None or h.switch == switch)
        and (zone is None or h.zone == zone)
    ]
    return {"hosts": [host_view(rmap, h) for h in page(hosts, marker, limit, lambda h: h.name)]}


@router.get("/{name}", summary="Show a host")
async def show_host(ctx: Context, _: Admin, name: str) -> dict[str, HostOut]:
    """One compute host by name, as the list shows it: capacity, admin state, `forced_down`, `reachable`,
    `in_maintenance` and the derived `status`. Admin only; an unknown host is a 404."""
    return {"host": host_view(ctx.cloud.map, ctx.cloud.map.host(name))}


@router.post("/{name}/action", summary="Enable, disable, force down or force up a host", responses=errors(409, 502))
async def host_action(ctx: Context, _: Admin, name: str, body: HostAction) -> dict[str, HostOut]:
    """Change a host's compute service as Nova's os-services does: `enable` or `disable` scheduling on it (a
    disabled host has status MAINTENANCE and keeps `reason` as its `disabled_reason`), `force-down` or `force-up`
    its compute service, or `maintenance-on`/`maintenance-off`, which suspends or resumes the inspector's automatic
    fault actions on it.

    Admin only. The change goes into the resource event log with `reason` (if given) and the host is returned as it
    now is; an action that changes nothing records nothing. In front of OpenStack, enable, disable (with `reason` as
    Nova's `disabled_reason`), force-down and force-up go to Nova's compute service first (`PUT /os-services`, 2.53):
    Nova's refusal is answered with its status and message (it refuses, 400, to force a host up while evacuation
    records remain on it), a Nova that cannot be reached with a 502. The maintenance flag is Vigil's own."""
    cloud = ctx.cloud
    match body.action:
        case "enable" | "disable":
            host = await cloud.set_host_enabled(name, body.action == "enable", reason=body.reason)
        case "force-down" | "force-up":
            host = await cloud.set_host_forced_down(name, body.action == "force-down", reason=body.reason)
        case "maintenance-on" | "maintenance-off":
            host = await cloud.set_host_maintenance(name, body.action == "maintenance-on", reason=body.reason)
    return {"host": host_view(cloud.map, host)}
