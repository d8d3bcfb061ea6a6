"""The resource event log: every state change, in order.

Admins read all of it; members read their own project's. Page with
``after`` (the last ``seq`` seen).
"""

from fastapi import APIRouter, Query

from vigil.api.deps import Context, Reader
from vigil.api.schemas import EventOut
from vigil.api.views import event_view
from vigil.domain.limits import MAX_INT64

router = APIRouter(prefix="/resource-events", tags=["events"])


@router.get("", summary="Read the resource event log")
async def list_events(
    ctx: Context,
    principal: Reader,
    after: int = Query(0, ge=0, le=MAX_INT64, description="Only events with a greater seq."),
    resource_type: str | None = None,
    resource_id: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, list[EventOut]]:
    """Read the resource event log: every change to a resource (host, instance, port, server group, ...), oldest
    first, each with its `seq`, the changed fields as `[old, new]` and the reason (the operation or fault that
    caused it).

    Admins read all of it; a member only its own project's events (infrastructure events, such as a host's, are not
    shown), with hosts as opaque ids. Page by passing the last `seq` seen as `after`; filter by `resource_type` and
    `resource_id`."""
    events = await ctx.events.events(
        after_seq=after,
        resource_type=resource_type,
        resource_id=resource_id,
        project=None if principal.is_admin else principal.project,
        limit=limit,
    )
    return {"events": [event_view(e, principal) for e in events]}
