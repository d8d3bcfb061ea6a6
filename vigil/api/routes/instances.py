"""Instances: members see and manage their own project's; admins all.

Another project's instance answers 404, exactly as a missing one does, so a
member cannot learn what exists elsewhere. Boot and delete are open to
members in their own project; moving instances and forcing their state are
admin actions, as in Nova's default policy.
"""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from vigil.api.auth import Principal
from vigil.api.contract import errors
from vigil.api.deps import Context, Reader
from vigil.api.schemas import BootRequest, InstanceActionRequest, InstanceOut
from vigil.api.views import Limit, Marker, instance_view, page, shown_host
from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import NotFound
from vigil.domain.model import Instance
from vigil.domain.states import InstanceState

router = APIRouter(prefix="/instances", tags=["instances"])


def visible_instance(rmap: ResourceMap, principal: Principal, ident: str) -> Instance:
    inst = rmap.instance(ident)
    if not principal.sees(inst.project):
        raise NotFound("instance", ident)
    return inst


@router.get("", summary="List instances")
async def list_instances(
    ctx: Context,
    principal: Reader,
    project: str | None = None,
    host: str | None = None,
    state: Annotated[InstanceState | None, Query()] = None,
    limit: int = Limit,
    marker: str | None = Marker,
) -> dict[str, list[InstanceOut]]:
    """List instances, each with its host's `host_status` (Nova API 2.16). Admins see every project's (filter with
    `project`); a member sees only its own project's (naming another `project` gives an empty list), and sees each
    host as Nova's opaque per-project host id rather than its name.

    Filter by `host` (a member gives the opaque id it was shown) and `state`; page with `limit` and `marker`, the id
    of the last instance of the previous page (a marker that names no instance is a 404)."""
    rmap = ctx.cloud.map
    if not principal.is_admin:
        if project is not None and project != principal.project:
            return {"instances": []}
        project = principal.project
    if host is not None and principal.is_admin:
        candidates = [i for i in rmap.instances_on(host) if project is None or i.project == project]
    elif host is not None:  # a member names a host by the opaque id it was shown
        candidates = [i for i in rmap.instances(project) if shown_host(principal, i.project, i.host) == host]
    else:
        candidates = rmap.instances(project)
    found = [i for i in candidates if state is None or i.state is state]
    return {"instances": [instance_view(rmap, i, principal) for i in page(found, marker, limit, lambda i: i.id)]}


@router.get("/{ident}", summary="Show an instance")
async def show_instance(ctx: Context, principal: Reader, ident: str) -> dict[str, InstanceOut]:
    """One instance by id, with its host's `host_status` (Nova API 2.16). Admins and members; to a member another
    project's instance is a 404, exactly as a missing one, and the host is an opaque id."""
    rmap = ctx.cloud.map
    return {"instance": instance_view(rmap, visible_instance(rmap, principal, ident), principal)}


@router.post("", status_code=202, summary="Boot an instance", responses=errors(404, 409, 502))
async def boot_instance(ctx: Context, principal: Reader, body: BootRequest) -> dict[str, InstanceOut]:
    """Create an instance in `project` (default: the caller's) on an UP host with free vCPUs that keeps its server
    group's affinity or anti-affinity policy, chosen by the scheduler or given by an admin as `host` (409 if none
    fits); each of `networks` gets one port.

    Answered 202 with the instance in state BUILD; it goes ACTIVE in the background, as the resource event log and
    `GET /v1/instances/{ident}` show. Members boot only into their own project and may not choose `host` (403);
    admins may do both. In front of OpenStack (`vim.driver: openstack`) boot is refused (409): servers are booted
    through Nova with the project's own credentials, and Vigil's map shows them within a second."""
    project = body.project or principal.project
    if not principal.is_admin:
        if project != principal.project:
            raise HTTPException(403, "members boot instances only in their own project")
        if body.host is not None:
            raise HTTPException(403, "only admins choose the host")
    op = await ctx.cloud.boot(
        name=body.name,
        project=project,
        vcpus=body.vcpus,
        group=body.group,
        metadata=body.metadata,
        host=body.host,
        networks=body.networks,
    )
    return {"instance": instance_view(ctx.cloud.map, op.instance, principal)}


@router.delete("/{ident}", status_code=204, summary="Delete an instance", responses=errors(409, 502))
async def delete_instance(ctx: Context, principal: Reader, ident: str) -> Response:
    """Delete an instance and its ports (204). Admins delete any; a member only its own project's (another project's
    is a 404). An instance that is MIGRATING cannot be deleted (409). In front of OpenStack, Nova deletes it, and the
    204 comes once it is gone; Nova's refusal is its status and message, a Nova that cannot be reached a 502."""
    visible_instance(ctx.cloud.map, principal, ident)
    await ctx.cloud.delete(ident)
    return Response(status_code=204)


MEMBER_ACTIONS = frozenset({"stop", "start"})


@router.post(
    "/{ident}/action",
    status_code=202,
    summary="Stop, start, migrate, evacuate or reset an instance",
    responses=errors(409, 502),
)
async def instance_action(
    ctx: Context, principal: Reader, ident: str, body: InstanceActionRequest
) -> dict[str, InstanceOut]:
    """Act on an instance, as Nova's server actions: `stop` (ACTIVE to SHUTOFF) and `start` (SHUTOFF to ACTIVE) are
    open to its project's members and to admins; `migrate`, `live-migrate`, `evacuate` (to `host`, or where the
    scheduler chooses) and `reset-state` (to `state` ACTIVE or ERROR) are admin only (403 for a member).

    Stop, start and reset-state are done when the 202 comes; a migration or evacuation is started and answered with
    the instance MIGRATING or BUILD, and ends in the background. An action the instance's state does not allow is a
    409 (live migration needs ACTIVE; evacuate needs its host DOWN or UNKNOWN).

    In front of OpenStack the action goes to Nova, and Nova's refusal is answered with its status (400, 404 or 409)
    and its message; a Nova that cannot be reached, or refuses Vigil's own credentials, is a 502. Stop and start
    answer once Nova has done them; an evacuated instance is answered as it was, and moves when Nova has rebuilt
    it."""
    cloud = ctx.cloud
    visible_instance(cloud.map, principal, ident)
    if body.action not in MEMBER_ACTIONS and not principal.is_admin:
        raise HTTPException(403, f"{body.action} needs the role admin")
    match body.action:
        case "stop":
            inst = await cloud.stop(ident)
        case "start":
            inst = await cloud.start(ident)
        case "migrate" | "live-migrate":
            inst = (await cloud.migrate(ident, target=body.host, live=body.action == "live-migrate")).instance
        case "evacuate":
            inst = (await cloud.evacuate(ident, target=body.host)).instance
        case "reset-state":
            if body.state is None:
                raise HTTPException(422, "reset-state needs a state: ACTIVE or ERROR")
            inst = await cloud.reset_state(ident, body.state)
    return {"instance": instance_view(cloud.map, inst, principal)}
