"""NFVI maintenance: Fenix's API for sessions, project replies and FEAT03 constraints.

Sessions are the infrastructure admin's (admin role). A project's endpoints
(``/v1/maintenance/{session}/{project}``) answer that project's members and
admins; anyone else gets 403. Constraints on an instance or an instance
group may be set by its project's members or an admin; other projects'
resources look missing (404), as everywhere in the API.
"""

from fastapi import APIRouter, HTTPException, Request, Response

from vigil.api.auth import Principal
from vigil.api.deps import Admin, Context, Reader
from vigil.api.maintenance_schemas import (
    GroupConstraintsIn,
    GroupConstraintsOut,
    InstanceConstraintsIn,
    InstanceConstraintsOut,
    ProjectInstancesOut,
    ReplyIn,
    ReplyOut,
    SessionCreated,
    SessionDetailOut,
    SessionIn,
    SessionOut,
)
from vigil.domain.errors import NotFound
from vigil.domain.maintenance import GroupConstraints, InstanceConstraints, MaintenanceSession
from vigil.maintenance.actions import InvalidAction
from vigil.maintenance.service import MaintenanceService

router = APIRouter(tags=["maintenance"])


def _service(ctx: Context) -> MaintenanceService:
    if ctx.maintenance is None:
        raise HTTPException(503, "maintenance is not running in this server")
    return ctx.maintenance


def _view(session: MaintenanceSession) -> SessionOut:
    return SessionOut(
        session_id=session.id,
        state=str(session.state),
        hosts=list(session.hosts),
        maintenance_at=session.maintenance_at,
        created_at=session.created_at,
        updated_at=session.updated_at,
        workflow=session.workflow,
        metadata=dict(session.metadata),
        actions=[dict(a) for a in session.actions],
        reason=session.reason,
        migrations=session.migrations,
        percent_done=session.percent_done,
    )


def _own_project(principal: Principal, project: str) -> None:
    if not principal.sees(project):
        raise HTTPException(403, f"only project {project}'s members or an admin may call this")


# -- sessions (admin) -------------------------------------------------------------------


@router.post("/maintenance", summary="Start a maintenance session")
async def create_session(ctx: Context, principal: Admin, body: SessionIn, request: Request) -> SessionCreated:
    session = await _service(ctx).create(
        reply_url_root=str(request.base_url).rstrip("/"),
        hosts=body.hosts,
        maintenance_at=body.maintenance_at,
        workflow=body.workflow,
        metadata=body.metadata,
        actions=body.actions,
    )
    return SessionCreated(session_id=session.id)


@router.get("/maintenance", summary="List maintenance sessions")
async def list_sessions(ctx: Context, principal: Admin) -> dict[str, list[SessionOut]]:
    return {"sessions": [_view(s) for s in _service(ctx).sessions()]}


@router.get("/maintenance/{session_id}", summary="Show a maintenance session's state")
async def show_session(ctx: Context, principal: Admin, session_id: str) -> SessionOut:
    return _view(_service(ctx).get(session_id))


@router.get("/maintenance/{session_id}/detail", summary="Hosts, projects, instances and percent done")
async def session_detail(ctx: Context, principal: Admin, session_id: str) -> SessionDetailOut:
    return SessionDetailOut.model_validate(_service(ctx).detail(session_id))


@router.delete(
    "/maintenance/{session_id}",
    summary="Cancel a session (rolled back) or forget a finished one",
    responses={204: {"description": "a finished session was forgotten"}},
)
async def cancel_session(ctx: Context, principal: Admin, session_id: str) -> Response:
    session = await _service(ctx).cancel(session_id)
    if session is None:
        return Response(status_code=204)
    return Response(_view(session).model_dump_json(), media_type="application/json")


# -- a project's part (that project or admin) ---------------------------------------------


@router.get("/maintenance/{session_id}/{project_id}", summary="The project's instances in the session")
async def project_instances(ctx: Context, principal: Reader, session_id: str, project_id: str) -> ProjectInstancesOut:
    _own_project(principal, project_id)
    return ProjectInstancesOut(instance_ids=_service(ctx).project_instances(session_id, project_id))


@router.put("/maintenance/{session_id}/{project_id}", summary="A project's reply: ACK_<STATE> or NACK_<STATE>")
async def project_reply(ctx: Context, principal: Reader, session_id: str, project_id: str, body: ReplyIn) -> ReplyOut:
    _own_project(principal, project_id)
    actions = {k: str(v) for k, v in body.instance_actions.items()}
    reply = _service(ctx).reply(session_id, project_id, body.state, actions)
    return ReplyOut(
        session_id=session_id, project_id=project_id, state=reply.text, instance_actions=reply.instance_actions
    )


# -- FEAT03 constraints ---------------------------------------------------------------------


def _check_body_id(given: str | None, path: str, what: str) -> None:
    if given is not None and given != path:
        raise InvalidAction(f"{what} in the body ({given}) differs from the path ({path})")


def _instance_out(c: InstanceConstraints) -> InstanceConstraintsOut:
    return InstanceConstraintsOut(
        instance_id=c.instance_id,
        project_id=c.project,
        group_id=c.group_id,
        max_interruption_time=c.max_interruption_time,
        migration_type=c.migration_type,
        resource_mitigation=c.resource_mitigation,
        lead_time=c.lead_time,
    )


def _group_out(c: GroupConstraints) -> GroupConstraintsOut:
    return GroupConstraintsOut(
        group_id=c.group_id,
        project_id=c.project,
        anti_affinity_group=c.anti_affinity_group,
        max_instances_per_host=c.max_instances_per_host,
        max_impacted_members=c.max_impacted_members,
        recovery_time=c.recovery_time,
    )


def _visible_instance(ctx: Context, principal: Principal, instance_id: str) -> str:
    inst = ctx.cloud.map.instance(instance_id)
    if not principal.sees(inst.project):
        raise NotFound("instance", instance_id)
    return inst.project


def _visible_group(ctx: Context, principal: Principal, group_id: str) -> str:
    try:
        group = ctx.cloud.map.group(group_id)
    except NotFound:
        raise NotFound("instance group", group_id) from None  # the same words as for another project's
    if not principal.sees(group.project):
        raise NotFound("instance group", group_id)
    return group.project


@router.put("/instance/{instance_id}", summary="Set an instance's maintenance constraints")
async def put_instance(
    ctx: Context, principal: Reader, instance_id: str, body: InstanceConstraintsIn
) -> InstanceConstraintsOut:
    project = _visible_instance(ctx, principal, instance_id)
    _check_body_id(body.instance_id, instance_id, "instance_id")
    _check_body_id(body.project_id, project, "project_id")
    group = ctx.cloud.map.instance(instance_id).group
    if body.group_id is not None:
        _check_body_id(body.group_id, group or "", "group_id")
    saved = await _service(ctx).put_instance_constraints(
        InstanceConstraints(
            instance_id=instance_id,
            project=project,
            group_id=group,
            max_interruption_time=body.max_interruption_time,
            migration_type=body.migration_type,
            resource_mitigation=body.resource_mitigation,
            lead_time=body.lead_time,
        )
    )
    return _instance_out(saved)


@router.get("/instance/{instance_id}", summary="An instance's maintenance constraints")
async def get_instance(ctx: Context, principal: Reader, instance_id: str) -> InstanceConstraintsOut:
    _visible_instance(ctx, principal, instance_id)
    return _instance_out(_service(ctx).instance_constraints(instance_id))


@router.delete("/instance/{instance_id}", status_code=204, summary="Remove an instance's maintenance constraints")
async def delete_instance(ctx: Context, principal: Reader, instance_id: str) -> Response:
    _visible_instance(ctx, principal, instance_id)
    await _service(ctx).delete_instance_constraints(instance_id)
    return Response(status_code=204)


@router.put("/instance_group/{group_id}", summary="Set an instance group's maintenance constraints")
async def put_group(ctx: Context, principal: Reader, group_id: str, body: GroupConstraintsIn) -> GroupConstraintsOut:
    project = _visible_group(ctx, principal, group_id)
    _check_body_id(body.group_id, group_id, "group_id")
    _check_body_id(body.project_id, project, "project_id")
    saved = await _service(ctx).put_group_constraints(
        GroupConstraints(
            group_id=group_id,
            project=project,
            anti_affinity_group=body.anti_affinity_group,
            max_instances_per_host=body.max_instances_per_host,
            max_impacted_members=body.max_impacted_members,
            recovery_time=body.recovery_time,
        )
    )
    return _group_out(saved)


@router.get("/instance_group/{group_id}", summary="An instance group's maintenance constraints")
async def get_group(ctx: Context, principal: Reader, group_id: str) -> GroupConstraintsOut:
    _visible_group(ctx, principal, group_id)
    return _group_out(_service(ctx).group_constraints(group_id))


@router.delete("/instance_group/{group_id}", status_code=204, summary="Remove an instance group's constraints")
async def delete_group(ctx: Context, principal: Reader, group_id: str) -> Response:
    _visible_group(ctx, principal, group_id)
    await _service(ctx).delete_group_constraints(group_id)
    return Response(status_code=204)
