"""Server groups and projects: members see their own."""

from fastapi import APIRouter

from vigil.api.deps import Context, Reader
from vigil.api.schemas import GroupPatch, ProjectOut, ServerGroupOut
from vigil.api.views import group_view
from vigil.domain.errors import NotFound

router = APIRouter(tags=["server groups"])


@router.get("/server-groups", summary="List server groups")
async def list_groups(ctx: Context, principal: Reader) -> dict[str, list[ServerGroupOut]]:
    rmap = ctx.cloud.map
    project = None if principal.is_admin else principal.project
    return {"server_groups": [group_view(rmap, g) for g in rmap.groups(project)]}


@router.get("/server-groups/{ident}", summary="Show a server group")
async def show_group(ctx: Context, principal: Reader, ident: str) -> dict[str, ServerGroupOut]:
    group = ctx.cloud.map.group(ident)
    if not principal.sees(group.project):
        raise NotFound("server group", ident)
    return {"server_group": group_view(ctx.cloud.map, group)}


@router.patch("/server-groups/{ident}", summary="Set a server group's alarm threshold")
async def patch_group(ctx: Context, principal: Reader, ident: str, body: GroupPatch) -> dict[str, ServerGroupOut]:
    group = ctx.cloud.map.group(ident)
    if not principal.sees(group.project):
        raise NotFound("server group", ident)
    await ctx.cloud.set_group_alarm_threshold(group.id, body.alarm_threshold)
    return {"server_group": group_view(ctx.cloud.map, group)}


@router.get("/projects", summary="List projects", tags=["projects"])
async def list_projects(ctx: Context, principal: Reader) -> dict[str, list[ProjectOut]]:
    projects = [p for p in ctx.cloud.map.projects() if principal.sees(p.id)]
    return {"projects": [ProjectOut.model_validate(p) for p in projects]}
