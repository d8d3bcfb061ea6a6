"""Alarms: members see their own project's (tenant) alarms, admins every alarm.

Lists come from the store, paged (``limit``, and ``marker`` the id of the
last alarm of the previous page, in raise order), so no answer grows with
history; one alarm is looked up in memory (open ones and those cleared a
moment ago) before the store.
"""

from fastapi import APIRouter, Query

from vigil.api.auth import Principal
from vigil.api.contract import errors
from vigil.api.deps import Context, Reader
from vigil.api.fault_schemas import AlarmOut, AlarmPatch
from vigil.api.views import Marker
from vigil.domain.alarms import Alarm, AlarmKind, AlarmState
from vigil.domain.errors import NotFound
from vigil.domain.faults import Severity

router = APIRouter(prefix="/v1/alarms", tags=["alarms"])

ALARM_LIMIT = Query(100, ge=1, le=1000, description="At most this many alarms.")


async def visible_alarm(ctx: Context, principal: Principal, ident: str) -> Alarm:
    try:
        alarm = ctx.faults.alarms.get(ident)
    except NotFound:
        stored = await ctx.faults.log.alarm(ident)
        if stored is None:
            raise
        alarm = stored
    if not principal.is_admin and alarm.project != principal.project:
        raise NotFound("alarm", ident)
    return alarm


@router.get("", summary="List alarms")
async def list_alarms(
    ctx: Context,
    principal: Reader,
    project: str | None = None,
    resource_id: str | None = None,
    severity: Severity | None = None,
    state: AlarmState | None = None,
    kind: AlarmKind | None = None,
    limit: int = ALARM_LIMIT,
    marker: str | None = Marker,
) -> dict[str, list[AlarmOut]]:
    """List alarms, open and cleared, in the order they were raised. A member sees only its own project's alarms
    (naming another `project` gives an empty list); an admin sees every alarm, including host and switch alarms,
    which belong to no project.

    Filter by `project`, `resource_id` (the alarm's resource or one it affects), `severity`, `state` and `kind`;
    page with `limit` and `marker`, the id of the last alarm of the previous page (a marker that names no alarm
    gives an empty page)."""
    if not principal.is_admin:
        if project is not None and project != principal.project:
            return {"alarms": []}
        project = principal.project
    alarms = await ctx.faults.log.alarms(
        project=project,
        admin=principal.is_admin,
        resource_id=resource_id,
        severity=severity,
        state=state,
        kind=kind,
        marker=marker,
        limit=limit,
    )
    return {"alarms": [AlarmOut.model_validate(a) for a in alarms]}


@router.get("/{ident}", summary="Show an alarm")
async def show_alarm(ctx: Context, principal: Reader, ident: str) -> dict[str, AlarmOut]:
    """One alarm by id, open or cleared. Admins and members; to a member another project's alarm is a 404, as a
    missing one."""
    return {"alarm": AlarmOut.model_validate(await visible_alarm(ctx, principal, ident))}


@router.patch("/{ident}", summary="Acknowledge an alarm", responses=errors(409))
async def acknowledge_alarm(ctx: Context, principal: Reader, ident: str, body: AlarmPatch) -> dict[str, AlarmOut]:
    """Acknowledge an alarm, as ETSI SOL 003's alarm modification: the body is `{"ackState": "ACKNOWLEDGED"}` and
    the alarm is answered with its new `ack_state`. Acknowledging again is harmless. Admins and the alarm's
    project's members; to a member another project's alarm is a 404."""
    alarm = await visible_alarm(ctx, principal, ident)
    alarm.acknowledge()
    await ctx.transactions.save_records(alarm)
    return {"alarm": AlarmOut.model_validate(alarm)}
