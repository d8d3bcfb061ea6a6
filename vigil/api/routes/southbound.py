"""Doctor's southbound event API: where monitors report raw faults.

``PUT /events`` takes a list (Doctor's sample inspector interface) and
``POST /v1/event`` one event. Callers need the monitor or admin role. The
answer comes once the events are handled and durable, with each event's
outcome (``fault_opened``, ``correlated``, ``aggregated``, ``duplicate``,
``suppressed``, ``fault_cleared``, ...); the notifications have already
gone out by then. An event type Vigil has no policy for is a 422 naming the
known ones; an unknown host or switch is a 422 too, and no event of that
request is applied (they are recorded, with outcome ``unknown_host``).

A monitor holding the shared ``monitor.key`` signs each request body
(``X-Vigil-Signature: sha256=<hex>``, :mod:`vigil.domain.signatures`); a
wrong signature is a 401, and with ``monitor.require_signed_reports`` so is a
missing one, so a leaked monitor token alone cannot report hosts down.
"""

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request

from vigil.api.deps import Context, Reporter
from vigil.api.fault_schemas import EventOutcome, SouthboundEvent
from vigil.domain.faults import EventId, FaultEvent
from vigil.domain.signatures import SIGNATURE_HEADER, verify
from vigil.inspector.policy import known_types, split_type

router = APIRouter(tags=["southbound events"])

MAX_EVENTS = 1000
EVENTS_EXAMPLE = SouthboundEvent.model_config.get("json_schema_extra", {})["examples"]  # type: ignore[index]


async def signed(
    ctx: Context,
    _: Reporter,
    request: Request,
    signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            description="sha256=<hex>: the HMAC-SHA256 of the body under monitor.key",
        ),
    ] = None,
) -> None:
    """Check the body's signature once the token has passed (401 when wrong, or missing where required)."""
    signing = ctx.faults.signing
    if signature is None:
        if signing.required:
            raise HTTPException(401, f"this server takes only signed reports: send {SIGNATURE_HEADER}")
        return
    if signing.key is not None and not verify(signing.key, await request.body(), signature):
        raise HTTPException(401, f"{SIGNATURE_HEADER} does not match the body")


Signed = Annotated[None, Depends(signed)]


def _to_domain(ctx: Context, events: Sequence[SouthboundEvent]) -> list[FaultEvent]:
    policies = ctx.faults.inspector.policies
    unknown = sorted({e.type for e in events if split_type(e.type, e.details.status)[0] not in policies})
    if unknown:
        raise HTTPException(
            422, f"unknown event type {', '.join(unknown)}; known types: {', '.join(known_types(policies))}"
        )
    received = ctx.cloud.clock()
    return [
        FaultEvent(
            id=EventId(str(uuid.uuid4())),
            time=e.time,
            type=e.type,
            hostname=e.details.hostname,
            status=e.details.status,
            monitor=e.details.reporter,
            monitor_event_id=e.details.monitor_event_id,
            received_at=received,
            severity=e.details.severity,
            cause=e.details.cause,
            related_to=e.details.related,
            injected_at=e.details.injected_at,
        )
        for e in events
    ]


def _outcome(event: FaultEvent) -> EventOutcome:
    return EventOutcome(id=event.id, type=event.type, hostname=event.hostname, outcome=event.outcome, fault=event.fault)


@router.put("/events", summary="Report raw fault events (a list)")
async def put_events(
    ctx: Context,
    _: Signed,
    events: Annotated[list[SouthboundEvent], Body(max_length=MAX_EVENTS, examples=[EVENTS_EXAMPLE])],
) -> dict[str, list[EventOutcome]]:
    """Report raw fault events, as a list (Doctor's sample inspector interface; at most 1000). The monitor or admin
    role; where the server has `monitor.key`, a body is signed in `X-Vigil-Signature`.

    Answered once every event is handled and durable, with each event's outcome (`fault_opened`, `correlated`,
    `aggregated`, `duplicate`, `suppressed`, `fault_cleared`, ...) and its fault. A repeated (`monitor`,
    `monitor_event_id`, `time`) is answered `duplicate`, so a request may safely be sent again. An unknown event
    type, host or switch is a 422, and no event of the request is applied."""
    handled = await ctx.faults.intake.receive(_to_domain(ctx, events))
    return {"events": [_outcome(e) for e in handled]}


@router.post("/v1/event", summary="Report one raw fault event")
async def post_event(ctx: Context, _: Signed, event: SouthboundEvent) -> dict[str, EventOutcome]:
    """Report one raw fault event (Doctor's `{time, type, details}`). As `PUT /events`: the monitor or admin role,
    signed where the server has `monitor.key`, answered with the event's outcome once it is handled and durable; a
    repeated (`monitor`, `monitor_event_id`, `time`) is a `duplicate`."""
    [handled] = await ctx.faults.intake.receive(_to_domain(ctx, [event]))
    return {"event": _outcome(handled)}
