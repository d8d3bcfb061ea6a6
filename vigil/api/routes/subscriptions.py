"""Subscriptions to alarms, and the delivery log.

Doctor: "the VIM should only accept notification subscriptions for each
resource by its owner or administrator". A member may name in its filter
only resources of its own project (instances, ports, server groups, or the
project itself): anything else is 422 "unknown", whether it belongs to
another project, is a host or switch, or does not exist at all, so the
answer tells a tenant nothing of what lies outside its project. A member's
subscription hears only its project's alarms; an admin's hears every alarm,
including host-level ones. Creating a
subscription opens connections to its callbacks, so the first notification
does not pay for them; for the SOL 003 format that is also SOL 003's
callback test: each callback must answer a GET with 204, or the
subscription is refused with 422.

Notifications an endpoint could not take are retried for the horizon
(``notifier.retry_horizon_s``) and then FAILED; an admin sends them again
with ``POST /v1/deliveries/{id}/redeliver`` or, for all of a subscription's,
``POST /v1/subscriptions/{id}/redeliver``.

Maintenance messages reach a subscription only if its ``event_types`` names
``maintenance.scheduled`` (a project's messages: its own, or every
project's for an admin) or ``maintenance.host`` (host messages, which only
an admin may subscribe to: 403 otherwise). They are delivered as Aodh event
alarms, so a SOL 003 subscription naming either is refused with 422.
"""

import uuid

from fastapi import APIRouter, HTTPException, Query, Response

from vigil.api.auth import Principal
from vigil.api.contract import errors
from vigil.api.deps import Admin, Context, Reader
from vigil.api.fault_schemas import (
    AuthenticationIn,
    AuthenticationOut,
    DeliveryOut,
    FilterIn,
    MaintenanceEventType,
    RedeliveredOut,
    SubscriptionIn,
    SubscriptionOut,
)
from vigil.controller.resource_map import ResourceMap
from vigil.domain.alarms import AlarmKind
from vigil.domain.deliveries import Delivery, DeliveryState
from vigil.domain.errors import NotFound
from vigil.domain.maintenance import HOST_EVENT_TYPE
from vigil.domain.model import owner
from vigil.domain.subscriptions import (
    MESSAGE_EVENT_TYPES,
    Authentication,
    AuthType,
    PayloadFormat,
    Subscription,
    SubscriptionFilter,
    SubscriptionId,
)

router = APIRouter(tags=["subscriptions"])


def _owner_of(rmap: ResourceMap, ident: str) -> tuple[bool, str | None]:
    """(exists, owning project) of a resource id of any kind."""
    lookups = (rmap.instance, rmap.port, rmap.group, rmap.project, rmap.host, rmap.switch)
    for lookup in lookups:
        try:
            return True, owner(lookup(ident))
        except NotFound:
            continue
    return False, None


def _authorize(rmap: ResourceMap, principal: Principal, wanted: FilterIn) -> None:
    """Every resource named must exist and be the caller's (an admin's: any). A tenant hears
    the same for another project's resource, a host, a switch, and a name nobody has: the
    answer must not tell what exists beyond its own project."""
    unknown: list[str] = []
    for ident in wanted.resource_ids:
        exists, project = _owner_of(rmap, ident)
        if not exists or (not principal.is_admin and project != principal.project):
            unknown.append(ident)
    if unknown:
        raise HTTPException(422, f"unknown resources in filter: {', '.join(unknown)}")


def _check_event_types(principal: Principal, body: SubscriptionIn) -> None:
    """Host messages are for admins (403); maintenance messages come in the Aodh format only (422)."""
    wanted = {str(t) for t in body.filter.event_types}
    if HOST_EVENT_TYPE in wanted and not principal.is_admin:
        raise HTTPException(403, f"only an admin may subscribe to {HOST_EVENT_TYPE} messages")
    maintenance = sorted(wanted & MESSAGE_EVENT_TYPES)
    if maintenance and body.format is not PayloadFormat.AODH:
        raise HTTPException(
            422,
            f"maintenance messages ({', '.join(maintenance)}) are delivered in the {PayloadFormat.AODH} format "
            f"only; a {body.format} subscription may not name them in event_types",
        )


def _event_type(stored: str) -> AlarmKind | MaintenanceEventType:
    return MaintenanceEventType(stored) if stored in MESSAGE_EVENT_TYPES else AlarmKind(stored)


def authentication_of(body: AuthenticationIn | None) -> Authentication | None:
    if body is None:
        return None
    if body.authType[0] is AuthType.BASIC and body.paramsBasic is not None:
        return Authentication(AuthType.BASIC, body.paramsBasic.userName, body.paramsBasic.password)
    params = body.paramsOauth2ClientCredentials
    assert params is not None  # the schema requires it
    return Authentication(
        AuthType.OAUTH2_CLIENT_CREDENTIALS, params.clientId, params.clientPassword, params.tokenEndpoint
    )


def authentication_view(auth: Authentication | None) -> AuthenticationOut | None:
    """What a subscription's view shows of its authentication: never the secret."""
    if auth is None:
        return None
    return AuthenticationOut(authType=[auth.type], userName=auth.user, tokenEndpoint=auth.token_endpoint)


def subscription_view(s: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=s.id,
        name=s.name,
        project=s.project,
        admin=s.admin,
        filter=FilterIn(
            resource_ids=s.filter.resource_ids,
            resource_types=s.filter.resource_types,
            event_types=[_event_type(t) for t in s.filter.event_types],
            severities=s.filter.severities,
            lifecycles=s.filter.lifecycles,
        ),
        callbacks=list(s.callbacks),
        format=s.format,
        created_at=s.created_at,
        authentication=authentication_view(s.authentication),
    )


def visible_subscription(ctx: Context, principal: Principal, ident: str) -> Subscription:
    subscription = ctx.faults.subscriptions.get(ident)
    if not principal.is_admin and subscription.project != principal.project:
        raise NotFound("subscription", ident)
    return subscription


@router.post("/v1/subscriptions", status_code=201, summary="Subscribe to alarms", responses=errors(409))
async def create_subscription(ctx: Context, principal: Reader, body: SubscriptionIn) -> dict[str, SubscriptionOut]:
    """Subscribe callback URLs to alarms, in OpenStack Aodh's or ETSI SOL 003's format, optionally with SOL 003
    authentication to the callbacks; naming `maintenance.scheduled` or `maintenance.host` in `event_types` also
    brings maintenance messages (Aodh format only; `maintenance.host` is admin only).

    A member's subscription hears only its project's alarms, and its filter may name only its project's resources
    (anything else is a 422 'unknown'); an admin's hears every alarm. Callbacks must pass the server's callback
    policy (422), and for SOL 003 each must answer a GET with 204. Answers 201; secrets are never shown back. A
    project holds at most `notifier.max_subscriptions_per_project` (409)."""
    _authorize(ctx.cloud.map, principal, body.filter)
    _check_event_types(principal, body)
    limits = ctx.faults.limits
    if len(body.callbacks) > limits.max_callbacks_per_subscription:
        raise HTTPException(
            422,
            f"a subscription has at most {limits.max_callbacks_per_subscription} callbacks "
            "(notifier.max_callbacks_per_subscription)",
        )
    held = len(ctx.faults.subscriptions.of_project(principal.project))
    if held >= limits.max_subscriptions_per_project:
        raise HTTPException(
            409,
            f"project {principal.project} has {held} subscriptions, the most it may have "
            "(notifier.max_subscriptions_per_project): delete one first",
        )
    callbacks = list(body.callbacks)
    authentication = authentication_of(body.authentication)
    endpoints = [authentication.token_endpoint] if authentication and authentication.token_endpoint else []
    await ctx.faults.notifier.check_callbacks([*callbacks, *endpoints])
    if body.format is PayloadFormat.SOL003:
        await ctx.faults.notifier.test_callbacks(callbacks)
    subscription = Subscription(
        id=SubscriptionId(str(uuid.uuid4())),
        project=principal.project,
        admin=principal.is_admin,
        callbacks=callbacks,
        format=body.format,
        created_at=ctx.cloud.clock(),
        filter=SubscriptionFilter(
            resource_ids=list(body.filter.resource_ids),
            resource_types=list(body.filter.resource_types),
            event_types=[str(t) for t in body.filter.event_types],
            severities=list(body.filter.severities),
            lifecycles=list(body.filter.lifecycles),
        ),
        name=body.name,
        authentication=authentication,
    )
    await ctx.transactions.save_records(subscription)
    ctx.faults.subscriptions.add(subscription)
    ctx.faults.notifier.warm(subscription.callbacks)
    return {"subscription": subscription_view(subscription)}


@router.get("/v1/subscriptions", summary="List subscriptions")
async def list_subscriptions(ctx: Context, principal: Reader) -> dict[str, list[SubscriptionOut]]:
    """List subscriptions: those of the caller's project for a member, every one for an admin. Authentication shows
    its type and user, never the secret."""
    project = None if principal.is_admin else principal.project
    return {"subscriptions": [subscription_view(s) for s in ctx.faults.subscriptions.of_project(project)]}


@router.get("/v1/subscriptions/{ident}", summary="Show a subscription")
async def show_subscription(ctx: Context, principal: Reader, ident: str) -> dict[str, SubscriptionOut]:
    """One subscription by id; to a member another project's is a 404. Authentication shows its type and user, never
    the secret."""
    return {"subscription": subscription_view(visible_subscription(ctx, principal, ident))}


@router.delete("/v1/subscriptions/{ident}", status_code=204, summary="Unsubscribe")
async def delete_subscription(ctx: Context, principal: Reader, ident: str) -> Response:
    """Delete a subscription (204): it hears of no more alarms, and its `subscription.unreachable` alarm, if one is
    open, is cleared. Admins and its project's members; to a member another project's subscription is a 404."""
    subscription = visible_subscription(ctx, principal, ident)
    changes = ctx.transactions.begin("unsubscribe")
    changes.forget(subscription)
    for cleared in ctx.faults.notifier.subscription_removed(subscription):
        changes.record(cleared)
    await ctx.transactions.commit(changes)
    ctx.faults.subscriptions.remove(subscription.id)
    return Response(status_code=204)


@router.post(
    "/v1/subscriptions/{ident}/redeliver",
    summary="Send a subscription's FAILED deliveries again",
    responses=errors(409),
)
async def redeliver_subscription(ctx: Context, _: Admin, ident: str) -> RedeliveredOut:
    """Every delivery of the subscription that was given up (or refused) goes back to PENDING
    and is sent again, with a new retry horizon. Admin only; answers how many were sent again and their
    delivery ids (none when nothing had failed)."""
    subscription = ctx.faults.subscriptions.get(ident)
    failed: list[Delivery] = []
    after: str | None = None
    while True:
        page = await ctx.faults.log.deliveries(
            state=DeliveryState.FAILED, subscription=subscription.id, after=after, limit=1000
        )
        failed.extend(page)
        if len(page) < 1000:
            break
        after = page[-1].id
    again = await ctx.faults.notifier.redeliver(failed)
    return RedeliveredOut(redelivered=len(again), deliveries=[d.id for d in again])


@router.post("/v1/deliveries/{ident}/redeliver", summary="Send a FAILED delivery again", responses=errors(409))
async def redeliver_one(ctx: Context, _: Admin, ident: str) -> dict[str, DeliveryOut]:
    """Send one FAILED delivery again: it goes back to PENDING with a new retry horizon. Admin only; a delivery in
    any other state is a 409, an unknown one a 404."""
    delivery = await ctx.faults.log.delivery(ident)
    if delivery is None:
        raise NotFound("delivery", ident)
    [again] = await ctx.faults.notifier.redeliver([delivery])
    return {"delivery": DeliveryOut.model_validate(again)}


@router.get("/v1/deliveries", summary="The delivery log")
async def list_deliveries(
    ctx: Context,
    _: Admin,
    state: DeliveryState | None = None,
    subscription: str | None = None,
    fault: str | None = None,
    project: str | None = None,
    after: str | None = Query(None, description="Start after the delivery with this id."),
    limit: int = Query(100, ge=1, le=1000),
    marker: str | None = Query(None, description="The same as after, as every other list names it."),
) -> dict[str, list[DeliveryOut]]:
    """The delivery log: each notification to each callback URL, oldest first, with its state (PENDING, DELIVERED or
    FAILED), attempts and last HTTP status or error.

    Admin only. Filter by `state`, `subscription`, `fault` and `project`; page with `limit` and `after` (or
    `marker`), the id of the last delivery of the previous page."""
    found = await ctx.faults.log.deliveries(
        state=state, subscription=subscription, fault=fault, project=project, after=after or marker, limit=limit
    )
    return {"deliveries": [DeliveryOut.model_validate(d) for d in found]}
