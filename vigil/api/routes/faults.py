"""Faults and their Doctor profile, and the raw event log: admin only.

Lists come from the store, paged (``limit``, ``marker``): faults in the order
they opened, fault events newest first. One fault is looked up in memory
(open ones and those cleared a moment ago) before the store.
"""

from fastapi import APIRouter, Query

from vigil.api.deps import Admin, Context
from vigil.api.fault_schemas import FaultEventOut, FaultOut, ProfileOut
from vigil.api.views import Marker
from vigil.domain.errors import NotFound
from vigil.domain.faults import Checkpoint, Fault, FaultState

router = APIRouter(tags=["faults"])


async def find_fault(ctx: Context, ident: str) -> Fault:
    try:
        return ctx.faults.inspector.fault(ident)
    except NotFound:
        stored = await ctx.faults.log.fault(ident)
        if stored is None:
            raise
        return stored


def fault_view(fault: Fault) -> FaultOut:
    return FaultOut(
        id=fault.id,
        type=fault.type,
        resource_type=fault.resource_type,
        resource_id=fault.resource_id,
        severity=fault.severity,
        state=fault.state,
        opened_at=fault.opened_at,
        cleared_at=fault.cleared_at,
        events=list(fault.events),
        hosts=list(fault.hosts),
        instances=len(fault.instances),
    )


@router.get("/v1/faults", summary="List faults")
async def list_faults(
    ctx: Context,
    _: Admin,
    state: FaultState | None = None,
    limit: int = Query(100, ge=1, le=1000),
    marker: str | None = Marker,
) -> dict[str, list[FaultOut]]:
    """List the faults the inspector opened, in the order they opened: each with its type, the host or switch it
    concerns, severity, state, the ids of its events, the hosts it affects and how many instances it affected.

    Admin only. Filter by `state`; page with `limit` and `marker`, the id of the last fault of the previous page (a
    marker that names no fault gives an empty page)."""
    faults = await ctx.faults.log.faults(state=state, marker=marker, limit=limit)
    return {"faults": [fault_view(f) for f in faults]}


@router.get("/v1/faults/{ident}", summary="Show a fault")
async def show_fault(ctx: Context, _: Admin, ident: str) -> dict[str, FaultOut]:
    """One fault by id, open or cleared. Admin only; an unknown fault is a 404."""
    return {"fault": fault_view(await find_fault(ctx, ident))}


@router.get("/v1/faults/{ident}/profile", summary="Doctor profiler checkpoints of a fault")
async def fault_profile(ctx: Context, _: Admin, ident: str) -> ProfileOut:
    """The Doctor profiler's checkpoints of a fault (T00 injected, if the injector said; T01 detected; ... T09 the
    last consumer's receipt) as Unix times and in milliseconds after T01, with `notification_ms` (T09 - T01). Admin
    only."""
    fault = await find_fault(ctx, ident)
    relative = fault.profile_ms()
    return ProfileOut(
        fault=fault.id,
        checkpoints=dict(fault.checkpoints),
        ms_after_T01=relative,
        notification_ms=relative.get(Checkpoint.T09),
    )


@router.get("/v1/fault-events", summary="The raw events monitors reported, newest first")
async def list_fault_events(
    ctx: Context,
    _: Admin,
    outcome: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    marker: str | None = Marker,
) -> dict[str, list[FaultEventOut]]:
    """The raw events monitors reported, newest first, as recorded: each with the monitor's ids, when it was
    received, what became of it (`outcome`) and its fault.

    Admin only. Filter by `outcome`; page with `limit` and `marker`, the id of the last event of the previous page
    (a marker that names no event gives an empty page)."""
    events = await ctx.faults.log.fault_events(limit=limit, outcome=outcome, marker=marker)
    return {"fault_events": [FaultEventOut.model_validate(e) for e in events]}
