"""Server groups and projects: members see their own."""

from enum import Enum

from fastapi import APIRouter

from vigil.api.deps import Context, Reader
from vigil.api.schemas import GroupPatch, ProjectOut, ServerGroupOut
from vigil.api.views import group_view
from vigil.domain.errors import NotFound

router = APIRouter()
GROUPS: list[str | Enum] = ["server groups"]


@router.get("/server-groups", summary="List server groups", tags=GROUPS)
async def list_groups(ctx: Context, principal: Reader) -> dict[str, list[ServerGroupOut]]:
    """List server groups with their policy (affinity or anti-affinity), member instance ids and `alarm_threshold`.
    Admins see every group, a member only its own project's. Not paged."""
    rmap = ctx.cloud.map
    project = None if principal.is_admin else principal.project
    return {"server_groups": [group_view(rmap, g) for g in rmap.groups(project)]}


@router.get("/server-groups/{ident}", summary="Show a server group", tags=GROUPS)
async def show_group(ctx: Context, principal: Reader, ident: str) -> dict[str, ServerGroupOut]:
    """One server group by id, with its policy, members and `alarm_threshold`. Admins and members; to a member
    another project's group is a 404."""
    group = ctx.cloud.map.group(ident)
    if not principal.sees(group.project):
        raise NotFound("server group", ident)
    return {"server_group": group_view(ctx.cloud.map, group)}


@router.patch("/server-groups/{ident}", summary="Set a server group's alarm threshold", tags=GROUPS)
async def patch_group(ctx: Context, principal: Reader, ident: str, body: GroupPatch) -> dict[str, ServerGroupOut]:
    """Set `alarm_threshold`: how many of the group's members must be down before its `server_group.degraded` alarm
    is raised. Open to the group's project's members and to admins (to a member another project's group is a 404);
    setting the value it has changes nothing. Returns the group."""
    group = ctx.cloud.map.group(ident)
    if not principal.sees(group.project):
        raise NotFound("server group", ident)
    await ctx.cloud.set_group_alarm_threshold(group.id, body.alarm_threshold)
    return {"server_group": group_view(ctx.cloud.map, group)}


@router.get("/projects", summary="List projects", tags=["projects"])
async def list_projects(ctx: Context, principal: Reader) -> dict[str, list[ProjectOut]]:
    """List projects (tenants): every one for an admin, only its own for a member."""
    projects = [p for p in ctx.cloud.map.projects() if principal.sees(p.id)]
    return {"projects": [ProjectOut.model_validate(p) for p in projects]}
