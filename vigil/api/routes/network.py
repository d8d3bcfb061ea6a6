"""Ports, with Neutron's data_plane_status: members see their own project's."""

from fastapi import APIRouter

from vigil.api.deps import Context, Reader
from vigil.api.routes.instances import visible_instance
from vigil.api.schemas import PortOut
from vigil.api.views import Limit, Marker, page, port_view, shown_host
from vigil.domain.errors import NotFound
from vigil.domain.states import DataPlaneStatus

router = APIRouter(prefix="/ports", tags=["ports"])


@router.get("", summary="List ports")
async def list_ports(
    ctx: Context,
    principal: Reader,
    instance: str | None = None,
    host: str | None = None,
    data_plane_status: DataPlaneStatus | None = None,
    limit: int = Limit,
    marker: str | None = Marker,
) -> dict[str, list[PortOut]]:
    """List ports with Neutron's `data_plane_status` (ACTIVE or DOWN). Admins see every port; a member only its own
    project's, with each host shown as the opaque per-project host id.

    Filter by `instance` (another project's instance gives an empty list), `host` and `data_plane_status`; page with
    `limit` and `marker`, the id of the last port of the previous page."""
    rmap = ctx.cloud.map
    project = None if principal.is_admin else principal.project
    if instance is not None:
        try:
            ports = rmap.ports_of(visible_instance(rmap, principal, instance).id)
        except NotFound:
            ports = []
    elif host is not None and project is None:
        ports = rmap.ports_on(host)
    else:
        ports = rmap.ports(project)
    if host is not None and project is not None:  # a member names a host by its opaque id
        ports = [p for p in ports if shown_host(principal, p.project, p.host) == host]
    found = [p for p in ports if data_plane_status is None or p.data_plane_status is data_plane_status]
    return {"ports": [port_view(p, principal) for p in page(found, marker, limit, lambda p: p.id)]}


@router.get("/{ident}", summary="Show a port")
async def show_port(ctx: Context, principal: Reader, ident: str) -> dict[str, PortOut]:
    """One port by id: its instance, project, network, host and `data_plane_status`. Admins and members; to a member
    another project's port is a 404, as a missing one, and the host is an opaque id."""
    port = ctx.cloud.map.port(ident)
    if not principal.sees(port.project):
        raise NotFound("port", ident)
    return {"port": port_view(port, principal)}
