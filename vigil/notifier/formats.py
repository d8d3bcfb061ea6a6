"""Payload formats: one alarm change, rendered as the body a subscriber asked for.

:func:`render` is pure (``now`` is passed in) and returns the JSON bytes
that are recorded with the delivery and posted, unchanged, on every
attempt. It dispatches on the subscription's format:

``aodh``
    The body OpenStack Aodh's REST notifier posts when an event alarm
    fires (aodh/notifier/rest.py, aodh/evaluator/event.py)::

        {"alarm_name", "alarm_id", "severity", "previous", "current", "reason",
         "reason_data": {"type": "event", "event": {"message_id", "event_type",
                                                    "generated", "traits", "raw"}}}

    In Aodh the alarm is the definition the consumer created, so here
    ``alarm_id`` is the subscription's id and ``alarm_name`` its name.
    ``severity`` is Aodh's low / moderate / critical; ``current`` is
    ``alarm`` when a Vigil alarm is raised or updated and ``ok`` when it
    clears. The event carries the alarm as Ceilometer-style traits
    ``[name, dtype, value]`` (dtype 1 string, 2 integer, 3 float,
    4 datetime), among them Vigil's own ids: ``vigil_alarm_id``,
    ``vigil_notification_id``, ``vigil_fault_id`` and ``lifecycle``.

``sol003``
    ETSI GS NFV-SOL 003 VNF fault management notifications (clause 7.5.2):
    an ``AlarmNotification`` when an alarm is raised or updated, an
    ``AlarmClearedNotification`` when it clears. The "VNF"
    (``managedObjectId``) is the project; its affected instances are
    ``vnfcInstanceIds``.

Maintenance messages (:func:`render_message`) go to Aodh-format
subscriptions only, as OpenStack Fenix reaches app managers: the body an
Aodh event alarm on ``maintenance.scheduled`` posts, with Fenix's payload
as the event's traits (lists and dicts as JSON text, which Fenix's sample
VNF manager loads back).

Tenant alarms (``alarm.project`` set) never show physical detail: no host
or switch name, no monitor, no cause; only what Nova would show the
owner (``host_status``, the instance state, opaque host ids) and the
alarm's own abstract reason. Only the alarm details named in
``TENANT_DETAILS`` reach a tenant, so a detail added later stays hidden
until it is deliberately listed. Admin alarms (``alarm.project`` None)
carry every detail: host, monitor, cause.
"""

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from vigil.domain.alarms import Alarm, AlarmChange, AlarmKind, Lifecycle
from vigil.domain.deliveries import NotificationId
from vigil.domain.faults import Severity
from vigil.domain.maintenance import MaintenanceMessage
from vigil.domain.subscriptions import PayloadFormat, Subscription

__all__ = [
    "TENANT_DETAILS",
    "VIM_CONNECTION_ID",
    "render",
    "render_alarm_list_rebuilt",
    "render_aodh",
    "render_message",
    "render_sol003",
]

# The details of a tenant alarm a tenant may see (the inspector's tenant and server-group alarms).
# ``fence``: requested, confirmed or failed, the failed host's fencing (vigil.recovery), which an owner waits for
# before it can count on its instances not running there any more; ``recovery`` (evacuating, done, partial) and
# the owner's own instances ``evacuating``, ``recovered`` and ``not_recovered``: their evacuation by Vigil.
TENANT_DETAILS = frozenset(
    {
        "description",
        "host_status",
        "host_ids",
        "instance_state",
        "threshold",
        "members",
        "fence",
        "recovery",
        "evacuating",
        "recovered",
        "not_recovered",
    }
)

# SOL 003 ResourceHandle.vimConnectionId: the VIM holding the faulty resource is Vigil's cloud.
VIM_CONNECTION_ID = "vigil"

_EVENT_NAMESPACE = uuid.UUID("6b1f7e52-0c3d-4f6a-8d21-5e9a4c7b3f08")

# Aodh trait data types (ceilometer's event storage model).
_STRING, _INTEGER, _FLOAT, _DATETIME = 1, 2, 3, 4

_AODH_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.MAJOR: "moderate",
    Severity.INDETERMINATE: "moderate",
    Severity.MINOR: "low",
    Severity.WARNING: "low",
    Severity.CLEARED: "low",
}

# Aodh state transitions: (previous, current).
_AODH_STATES = {
    Lifecycle.RAISED: ("ok", "alarm"),
    Lifecycle.UPDATED: ("alarm", "alarm"),
    Lifecycle.CLEARED: ("alarm", "ok"),
}

# Per alarm kind: the Aodh event type, the SOL 003 eventType, faultyResourceType,
# the VIM-level type of the faulty resource, and the probable cause when no cause is known.
_KINDS: dict[str, tuple[str, str, str, str, str]] = {
    AlarmKind.INSTANCE_DOWN: (
        "compute.instance.update",
        "EQUIPMENT_ALARM",
        "COMPUTE",
        "OS::Nova::Server",
        "host failure",
    ),
    AlarmKind.GROUP_DEGRADED: (
        "compute.server_group.degraded",
        "QOS_ALARM",
        "COMPUTE",
        "OS::Nova::ServerGroup",
        "server group members down",
    ),
    AlarmKind.HOST_DOWN: ("compute.host.down", "EQUIPMENT_ALARM", "COMPUTE", "OS::Nova::Host", "host down"),
    AlarmKind.HOST_DEGRADED: (
        "compute.host.degraded",
        "COMMUNICATIONS_ALARM",
        "COMPUTE",
        "OS::Nova::Host",
        "link failures",
    ),
    AlarmKind.SWITCH_DOWN: ("network.switch.down", "COMMUNICATIONS_ALARM", "NETWORK", "switch", "switch down"),
    AlarmKind.SUBSCRIPTION_UNREACHABLE: (
        "vigil.subscription.unreachable",
        "COMMUNICATIONS_ALARM",
        "NETWORK",
        "subscription",
        "notification receiver unreachable",
    ),
    AlarmKind.VIM_UNREACHABLE: ("vigil.vim.unreachable", "COMMUNICATIONS_ALARM", "COMPUTE", "vim", "VIM unreachable"),
    AlarmKind.HOST_FENCE_FAILED: (
        "compute.host.fence_failed",
        "EQUIPMENT_ALARM",
        "COMPUTE",
        "OS::Nova::Host",
        "host could not be fenced",
    ),
    AlarmKind.DEDUCED: ("vigil.deduced", "PROCESSING_ERROR_ALARM", "COMPUTE", "vitrage", "deduced by a rule"),
    AlarmKind.HOST_RECOVERY_FAILED: (
        "compute.host.recovery_failed",
        "PROCESSING_ERROR_ALARM",
        "COMPUTE",
        "OS::Nova::Host",
        "instances not recovered",
    ),
}
_UNKNOWN_KIND = ("vigil.alarm", "EQUIPMENT_ALARM", "COMPUTE", "", "unknown")

# Alarm kinds whose resource_ids are instances (SOL 003 vnfcInstanceIds).
_INSTANCE_KINDS = frozenset({AlarmKind.INSTANCE_DOWN, AlarmKind.GROUP_DEGRADED, AlarmKind.HOST_DOWN})

# Admin details renamed as traits, so they do not read as the event's own fields.
_TRAIT_NAMES = {"event_type": "fault_event_type"}


def render(
    subscription: Subscription,
    change: AlarmChange,
    notification: NotificationId,
    *,
    resource_ids: list[str],
    now: datetime,
    api_root: str = "",
) -> bytes:
    """The body to post to ``subscription``'s callbacks for ``change``.

    ``resource_ids`` are the affected resources this subscription may see
    (``vigil.domain.subscriptions.visible_resources``); ``api_root`` prefixes
    the SOL 003 links (``/v1/alarms/...``), which are relative without it.
    """
    renderer = _RENDERERS.get(subscription.format)
    if renderer is None:
        raise ValueError(f"unknown payload format {subscription.format!r}")
    document = renderer(subscription, change, notification, resource_ids, now, api_root)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# -- Aodh ---------------------------------------------------------------------


def render_aodh(
    subscription: Subscription,
    change: AlarmChange,
    notification: NotificationId,
    resource_ids: Sequence[str],
    now: datetime,
    api_root: str = "",
) -> dict[str, Any]:
    """The Aodh alarm webhook body, as a dict."""
    alarm = change.alarm
    previous, current = _AODH_STATES[change.lifecycle]
    event_type = _kind(alarm)[0]
    reason = alarm.reason or _kind(alarm)[4]
    if change.lifecycle is Lifecycle.CLEARED:
        reason = f"cleared: {reason}"
    event = {
        "message_id": _event_id(alarm),
        "event_type": event_type,
        "generated": _timestamp(_changed_at(alarm)),
        "traits": _traits(change, notification, resource_ids),
        "raw": {},
    }
    return {
        "alarm_name": subscription.name or subscription.id,
        "alarm_id": subscription.id,
        "severity": _AODH_SEVERITY.get(alarm.severity, "moderate"),
        "previous": previous,
        "current": current,
        "reason": reason,
        "reason_data": {"type": "event", "event": event},
    }


def _traits(change: AlarmChange, notification: NotificationId, resource_ids: Sequence[str]) -> list[list[Any]]:
    alarm = change.alarm
    traits: list[list[Any]] = []

    def add(name: str, value: Any) -> None:
        trait = _trait(name, value)
        if trait is not None:
            traits.append(trait)

    if alarm.project is not None:
        add("project_id", alarm.project)
        add("tenant_id", alarm.project)  # Aodh scopes event alarms by either trait
    if alarm.kind in _INSTANCE_KINDS:
        add("instance_ids", list(resource_ids))
        if len(resource_ids) == 1:
            add("instance_id", resource_ids[0])
        if alarm.kind is AlarmKind.INSTANCE_DOWN and change.lifecycle is not Lifecycle.CLEARED:
            add("state", "error")  # Nova's instance state, as compute.instance.update carries it
    else:
        add("resource_ids", list(resource_ids))
    if alarm.kind in (
        AlarmKind.HOST_DOWN,
        AlarmKind.HOST_DEGRADED,
        AlarmKind.HOST_FENCE_FAILED,
        AlarmKind.HOST_RECOVERY_FAILED,
    ):
        add("hostname", alarm.resource_id)
    elif alarm.kind is AlarmKind.SWITCH_DOWN:
        add("switch", alarm.resource_id)
    elif alarm.kind is AlarmKind.GROUP_DEGRADED:
        add("server_group_id", alarm.resource_id)
    for name, value in sorted(_visible_details(alarm).items()):
        if name == "description":
            continue  # it is the reason
        if name == "host_status" and change.lifecycle is Lifecycle.CLEARED:
            continue  # the details are as raised: the host is no longer down
        add(_TRAIT_NAMES.get(name, name), value)
    add("severity", str(alarm.severity))
    add("lifecycle", str(change.lifecycle))
    add("vigil_alarm_id", alarm.id)
    add("vigil_alarm_kind", str(alarm.kind))
    add("vigil_alarm_version", alarm.version)
    add("vigil_notification_id", notification)
    add("vigil_fault_id", alarm.fault)
    return traits


def _trait(name: str, value: Any) -> list[Any] | None:
    """``[name, dtype, value]``; lists become comma-separated strings (traits are scalars)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return [name, _STRING, "true" if value else "false"]
    if isinstance(value, int):
        return [name, _INTEGER, value]
    if isinstance(value, float):
        return [name, _FLOAT, value]
    if isinstance(value, datetime):
        return [name, _DATETIME, _timestamp(value)]
    if isinstance(value, list | tuple | set | frozenset):
        return [name, _STRING, ",".join(str(v) for v in value)]
    return [name, _STRING, str(value)]


def render_message(subscription: Subscription, message: MaintenanceMessage, notification: NotificationId) -> bytes:
    """The Aodh event-alarm webhook body announcing a maintenance message, as JSON bytes.

    Shaped as :func:`render_aodh`'s for a raised alarm (``previous`` ok,
    ``current`` alarm, severity low); ``reason_data.event`` has the
    message's event type, the notification id as ``message_id``, the
    message's creation time as ``generated``, and the payload's fields as
    traits: strings as strings, datetimes as datetime traits (ISO text),
    lists and dicts as JSON text; ``project_id``/``tenant_id`` (a project's
    message) and ``vigil_notification_id`` are added. The body depends on the
    message only, so every attempt posts the same bytes. Only the Aodh format
    carries messages (ValueError otherwise).
    """
    if subscription.format is not PayloadFormat.AODH:
        raise ValueError(f"maintenance messages go to Aodh-format subscriptions only, not {subscription.format!r}")
    previous, current = _AODH_STATES[Lifecycle.RAISED]
    state = message.payload.get("state")
    event = {
        "message_id": notification,
        "event_type": message.event_type,
        "generated": _timestamp(message.created_at),
        "traits": _message_traits(message, notification),
        "raw": {},
    }
    document = {
        "alarm_name": subscription.name or subscription.id,
        "alarm_id": subscription.id,
        "severity": "low",
        "previous": previous,
        "current": current,
        "reason": f"{message.event_type}: {state} of maintenance session {message.session_id}",
        "reason_data": {"type": "event", "event": event},
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _message_traits(message: MaintenanceMessage, notification: NotificationId) -> list[list[Any]]:
    traits: dict[str, list[Any]] = {}
    for name, value in message.payload.items():
        if isinstance(value, list | tuple | set | frozenset | dict):
            structured = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            traits[name] = [name, _STRING, json.dumps(structured, default=_json_default, ensure_ascii=False)]
        elif (trait := _trait(name, value)) is not None:
            traits[name] = trait
    if message.project is not None:
        traits["project_id"] = ["project_id", _STRING, message.project]
        traits["tenant_id"] = ["tenant_id", _STRING, message.project]  # Aodh scopes event alarms by either trait
    traits["vigil_notification_id"] = ["vigil_notification_id", _STRING, notification]
    return list(traits.values())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _event_id(alarm: Alarm) -> str:
    """One id per alarm version: the "event" every subscriber of that change hears of."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{alarm.id}/{alarm.version}"))


# -- ETSI NFV-SOL 003 ---------------------------------------------------------


def render_sol003(
    subscription: Subscription,
    change: AlarmChange,
    notification: NotificationId,
    resource_ids: Sequence[str],
    now: datetime,
    api_root: str = "",
) -> dict[str, Any]:
    """An AlarmNotification, or an AlarmClearedNotification for a cleared alarm, as a dict."""
    alarm = change.alarm
    root = api_root.rstrip("/")
    alarm_href = f"{root}/v1/alarms/{alarm.id}"
    subscription_link = {"href": f"{root}/v1/subscriptions/{subscription.id}"}
    if change.lifecycle is Lifecycle.CLEARED:
        return {
            "id": notification,
            "notificationType": "AlarmClearedNotification",
            "subscriptionId": subscription.id,
            "timeStamp": _timestamp(now),
            "alarmId": alarm.id,
            "alarmClearedTime": _timestamp(alarm.cleared_at or alarm.changed_at),
            "_links": {"subscription": subscription_link, "alarm": {"href": alarm_href}},
        }
    return {
        "id": notification,
        "notificationType": "AlarmNotification",
        "subscriptionId": subscription.id,
        "timeStamp": _timestamp(now),
        "alarm": _sol003_alarm(alarm, resource_ids, alarm_href),
        "_links": {"subscription": subscription_link},
    }


def render_alarm_list_rebuilt(
    subscription: Subscription, notification: NotificationId, now: datetime, api_root: str = ""
) -> bytes:
    """SOL 003's ``AlarmListRebuiltNotification``: notifications were missed (given up while
    the subscriber could not be reached), so it should read the alarm list again."""
    root = api_root.rstrip("/")
    document = {
        "id": notification,
        "notificationType": "AlarmListRebuiltNotification",
        "subscriptionId": subscription.id,
        "timeStamp": _timestamp(now),
        "_links": {
            "subscription": {"href": f"{root}/v1/subscriptions/{subscription.id}"},
            "alarms": {"href": f"{root}/v1/alarms"},
        },
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _sol003_alarm(alarm: Alarm, resource_ids: Sequence[str], href: str) -> dict[str, Any]:
    _, event_type, resource_type, vim_type, default_cause = _kind(alarm)
    admin = alarm.project is None
    document: dict[str, Any] = {
        "id": alarm.id,
        "managedObjectId": alarm.resource_id if admin else alarm.project,
    }
    if alarm.kind in _INSTANCE_KINDS:
        document["vnfcInstanceIds"] = list(resource_ids)
    document["rootCauseFaultyResource"] = {
        "faultyResource": {
            "vimConnectionId": VIM_CONNECTION_ID,
            "resourceId": _faulty_resource(alarm, resource_ids),
            "vimLevelResourceType": vim_type,
        },
        "faultyResourceType": resource_type,
    }
    document["alarmRaisedTime"] = _timestamp(alarm.raised_at)
    document["alarmChangedTime"] = _timestamp(alarm.changed_at)
    if alarm.cleared_at is not None:
        document["alarmClearedTime"] = _timestamp(alarm.cleared_at)
    document["ackState"] = str(alarm.ack_state)
    document["perceivedSeverity"] = str(alarm.severity)
    document["eventTime"] = _timestamp(alarm.raised_at)
    document["eventType"] = event_type
    document["faultType"] = str(alarm.kind)
    cause = alarm.details.get("cause") if admin else None
    document["probableCause"] = str(cause) if cause else default_cause
    document["isRootCause"] = admin and alarm.kind in (AlarmKind.HOST_DOWN, AlarmKind.SWITCH_DOWN)
    document["faultDetails"] = _fault_details(alarm, resource_ids)
    document["_links"] = {"self": {"href": href}}
    return document


def _faulty_resource(alarm: Alarm, resource_ids: Sequence[str]) -> str:
    """The virtual resource to blame: the physical one for admins, the tenant's own otherwise."""
    if alarm.project is None or alarm.kind is not AlarmKind.INSTANCE_DOWN:
        return alarm.resource_id
    return resource_ids[0] if resource_ids else alarm.resource_id


def _fault_details(alarm: Alarm, resource_ids: Sequence[str]) -> list[str]:
    details = _visible_details(alarm)
    lines = [str(details.get("description") or alarm.reason or _kind(alarm)[4])]
    for name, value in sorted(details.items()):
        if name == "description" or value is None:
            continue
        lines.append(f"{name}: {_text(value)}")
    if alarm.kind not in _INSTANCE_KINDS and resource_ids:
        lines.append(f"resource_ids: {_text(list(resource_ids))}")
    return lines


# -- shared -------------------------------------------------------------------


def _kind(alarm: Alarm) -> tuple[str, str, str, str, str]:
    return _KINDS.get(alarm.kind, _UNKNOWN_KIND)


def _visible_details(alarm: Alarm) -> Mapping[str, Any]:
    """Every detail for an admin alarm; only the listed, abstract ones for a tenant's."""
    if alarm.project is None:
        return alarm.details
    return {k: v for k, v in alarm.details.items() if k in TENANT_DETAILS}


def _changed_at(alarm: Alarm) -> datetime:
    return alarm.cleared_at or alarm.changed_at


def _text(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_Renderer = Callable[[Subscription, AlarmChange, NotificationId, Sequence[str], datetime, str], dict[str, Any]]
_RENDERERS: dict[str, _Renderer] = {PayloadFormat.AODH: render_aodh, PayloadFormat.SOL003: render_sol003}
