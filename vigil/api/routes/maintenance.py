"""NFVI maintenance: Fenix's API for sessions, project replies and FEAT03 constraints.

Sessions are the infrastructure admin's (admin role). A project's endpoints
(``/v1/maintenance/{session}/{project}``) answer that project's members and
admins; anyone else gets 403. Constraints on an instance or an instance
group may be set by its project's members or an admin; other projects'
resources look missing (404), as everywhere in the API.
"""

from fastapi import APIRouter, HTTPException, Request, Response

from vigil.api.auth import Principal
from vigil.api.contract import errors
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

router = APIRouter(tags=["maintenance"], responses=errors(503))


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


@router.post("/maintenance", summary="Start a maintenance session", responses=errors(409))
async def create_session(ctx: Context, principal: Admin, body: SessionIn, request: Request) -> SessionCreated:
    """Start a maintenance session (Fenix's workflow) over `hosts` (empty: every compute host) at `maintenance_at`
    (default: now), running the named per-host `actions` the server configures. Admin only; answers the new
    `session_id`.

    The session runs in the background: it asks each affected project's app manager, through subscriptions naming
    `maintenance.scheduled`, to ACK each step, moves instances off the hosts and maintains them one at a time;
    follow it with `GET /v1/maintenance/{session_id}`. An unknown host, workflow or action is a 422; a host already
    in another open session is a 409."""
    session = await _service(ctx).create(
        reply_url_root=str(request.base_url).rstrip("/"),
        hosts=body.hosts,
        maintenance_at=body.maintenance_at,
        workflow=body.workflow,
        metadata=body.metadata,
        actions=[a.model_dump() for a in body.actions],
    )
    return SessionCreated(session_id=session.id)


@router.get("/maintenance", summary="List maintenance sessions")
async def list_sessions(ctx: Context, principal: Admin) -> dict[str, list[SessionOut]]:
    """Every maintenance session the server holds, open and finished, oldest first, with its state, hosts,
    migrations run, percent done and, for a failed one, the reason. Admin only."""
    return {"sessions": [_view(s) for s in _service(ctx).sessions()]}


@router.get("/maintenance/{session_id}", summary="Show a maintenance session's state")
async def show_session(ctx: Context, principal: Admin, session_id: str) -> SessionOut:
    """One session: its state (MAINTENANCE, SCALE_IN, PREPARE_MAINTENANCE, START_MAINTENANCE, PLANNED_MAINTENANCE,
    MAINTENANCE_COMPLETE, then MAINTENANCE_DONE or MAINTENANCE_FAILED with a `reason`), hosts, migrations run and
    percent done. Admin only; an unknown session is a 404."""
    return _view(_service(ctx).get(session_id))


@router.get("/maintenance/{session_id}/detail", summary="Hosts, projects, instances and percent done")
async def session_detail(ctx: Context, principal: Admin, session_id: str) -> SessionDetailOut:
    """A session's progress in detail: each host's maintenance state (enabled, going-to-maintenance, in-maintenance)
    with its times, each project with what it was last asked and its reply, and the instances now on the session's
    hosts. Admin only."""
    return SessionDetailOut.model_validate(_service(ctx).detail(session_id))


@router.delete(
    "/maintenance/{session_id}",
    summary="Cancel a session (rolled back) or forget a finished one",
    responses={204: {"description": "a finished session was forgotten"}, **errors(409)},
)
async def cancel_session(ctx: Context, principal: Admin, session_id: str) -> Response:
    """Cancel an open session: its workflow stops, every host it touched is rolled back to enabled, and the session
    is answered (200) in state MAINTENANCE_FAILED. A finished session is instead forgotten: removed from the store,
    answered 204. Admin only."""
    session = await _service(ctx).cancel(session_id)
    if session is None:
        return Response(status_code=204)
    return Response(_view(session).model_dump_json(), media_type="application/json")


# -- a project's part (that project or admin) ---------------------------------------------


@router.get("/maintenance/{session_id}/{project_id}", summary="The project's instances in the session")
async def project_instances(ctx: Context, principal: Reader, session_id: str, project_id: str) -> ProjectInstancesOut:
    """The ids of the project's instances that the session last told the project about (Fenix's GET of a project).
    The project's members and admins only; anyone else gets 403. An unknown session, or a project the session has
    not involved, is a 404."""
    _own_project(principal, project_id)
    return ProjectInstancesOut(instance_ids=_service(ctx).project_instances(session_id, project_id))


@router.put(
    "/maintenance/{session_id}/{project_id}",
    summary="A project's reply: ACK_<STATE> or NACK_<STATE>",
    responses=errors(409),
)
async def project_reply(ctx: Context, principal: Reader, session_id: str, project_id: str, body: ReplyIn) -> ReplyOut:
    """A project's app manager answers the message it was sent: `ACK_<STATE>` or `NACK_<STATE>` (a NACK fails the
    session), with what to do with each named instance (MIGRATE, LIVE_MIGRATE or OWN_ACTION).

    The project's members and admins only (403 otherwise). A reply that does not parse, or names an instance the
    project was not told about, is a 422; one to a state the project is not being asked, or to a session that has
    ended, is a 409. Answers the reply as taken."""
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
    """Set an instance's ETSI FEAT03 maintenance constraints, replacing any it had: how it is moved when its project
    names no action (`migration_type`) and how long before an action its app manager is told (`lead_time`).

    The instance's project's members and admins; to a member another project's instance is a 404. Ids given in the
    body must match the path and the instance (422 otherwise); the group is the instance's."""
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
    """An instance's maintenance constraints. The instance's project's members and admins; 404 when none are set
    (or, to a member, when the instance is another project's)."""
    _visible_instance(ctx, principal, instance_id)
    return _instance_out(_service(ctx).instance_constraints(instance_id))


@router.delete("/instance/{instance_id}", status_code=204, summary="Remove an instance's maintenance constraints")
async def delete_instance(ctx: Context, principal: Reader, instance_id: str) -> Response:
    """Remove an instance's maintenance constraints (204), so the defaults apply again. The instance's project's
    members and admins; 404 when none are set."""
    _visible_instance(ctx, principal, instance_id)
    await _service(ctx).delete_instance_constraints(instance_id)
    return Response(status_code=204)


@router.put("/instance_group/{group_id}", summary="Set an instance group's maintenance constraints")
async def put_group(ctx: Context, principal: Reader, group_id: str, body: GroupConstraintsIn) -> GroupConstraintsOut:
    """Set an instance group's (server group's) ETSI FEAT03 constraints, replacing any it had: whether its members
    must stay on different hosts, at most how many on one host, how many may be moved at once and the pause between
    such waves.

    The group's project's members and admins; to a member another project's group is a 404. Ids given in the body
    must match the path and the group's project (422 otherwise)."""
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
    """An instance group's maintenance constraints. The group's project's members and admins; 404 when none are set
    (or, to a member, when the group is another project's)."""
    _visible_group(ctx, principal, group_id)
    return _group_out(_service(ctx).group_constraints(group_id))


@router.delete("/instance_group/{group_id}", status_code=204, summary="Remove an instance group's constraints")
async def delete_group(ctx: Context, principal: Reader, group_id: str) -> Response:
    """Remove an instance group's maintenance constraints (204), so the defaults apply again. The group's project's
    members and admins; 404 when none are set."""
    _visible_group(ctx, principal, group_id)
    await _service(ctx).delete_group_constraints(group_id)
    return Response(status_code=204)
