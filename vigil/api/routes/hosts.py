"""Compute hosts: admin only, as Nova's os-hypervisors and os-services are."""

from typing import Annotated

from fastapi import APIRouter, Query

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
    return {"host": host_view(ctx.cloud.map, ctx.cloud.map.host(name))}


@router.post("/{name}/action", summary="Enable, disable, force down or force up a host")
async def host_action(ctx: Context, _: Admin, name: str, body: HostAction) -> dict[str, HostOut]:
    cloud = ctx.cloud
    match body.action:
        case "enable" | "disable":
            host = await cloud.set_host_enabled(name, body.action == "enable", reason=body.reason)
        case "force-down" | "force-up":
            host = await cloud.set_host_forced_down(name, body.action == "force-down", reason=body.reason)
        case "maintenance-on" | "maintenance-off":
            host = await cloud.set_host_maintenance(name, body.action == "maintenance-on", reason=body.reason)
    return {"host": host_view(cloud.map, host)}
