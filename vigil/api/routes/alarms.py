"""Alarms: members see their own project's (tenant) alarms, admins every alarm."""

from fastapi import APIRouter

from vigil.api.auth import Principal
from vigil.api.deps import Context, Reader
from vigil.api.fault_schemas import AlarmOut, AlarmPatch
from vigil.domain.alarms import Alarm, AlarmKind, AlarmState
from vigil.domain.errors import NotFound
from vigil.domain.faults import Severity

router = APIRouter(prefix="/v1/alarms", tags=["alarms"])


def visible_alarm(ctx: Context, principal: Principal, ident: str) -> Alarm:
    alarm = ctx.faults.alarms.get(ident)
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
) -> dict[str, list[AlarmOut]]:
    if not principal.is_admin:
        if project is not None and project != principal.project:
            return {"alarms": []}
        project = principal.project
    alarms = ctx.faults.alarms.query(
        project=project,
        admin=principal.is_admin,
        resource_id=resource_id,
        severity=severity,
        state=state,
        kind=kind,
    )
    return {"alarms": [AlarmOut.model_validate(a) for a in alarms]}


@router.get("/{ident}", summary="Show an alarm")
async def show_alarm(ctx: Context, principal: Reader, ident: str) -> dict[str, AlarmOut]:
    return {"alarm": AlarmOut.model_validate(visible_alarm(ctx, principal, ident))}


@router.patch("/{ident}", summary="Acknowledge an alarm")
async def acknowledge_alarm(ctx: Context, principal: Reader, ident: str, body: AlarmPatch) -> dict[str, AlarmOut]:
    alarm = visible_alarm(ctx, principal, ident)
    alarm.acknowledge()
    await ctx.cloud.save_records(alarm)
    return {"alarm": AlarmOut.model_validate(alarm)}
