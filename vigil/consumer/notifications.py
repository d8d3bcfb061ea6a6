"""Reading a notification, whichever payload format it came in.

Vigil posts either the Aodh alarm webhook body (what Tacker and other Aodh
consumers read)::

    {"alarm_name", "alarm_id", "severity", "previous", "current": "alarm"|"ok",
     "reason", "reason_data": {"type": "event", "event": {"event_type", "traits": [[name, type, value], ...]}}}

or an ETSI NFV-SOL 003 ``AlarmNotification`` (``alarm.vnfcInstanceIds``)
or ``AlarmClearedNotification`` (``alarmId`` only). :func:`parse_notification`
turns both into one :class:`Notification`: its stable id (the
``X-Vigil-Notification-Id`` header), whether the alarm is raised or
cleared, and the instances it names. Pure: no I/O.

Maintenance messages come as Aodh event alarms too, as OpenStack Fenix
sends them: event type ``maintenance.scheduled`` (to a project's app
manager) or ``maintenance.host`` (to admins), with the payload as traits
and its lists and dicts as JSON text. :func:`parse_maintenance` gives the
payload back as a plain dict, or None for a body that is no maintenance
message.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NOTIFICATION_HEADER = "x-vigil-notification-id"

# Aodh event traits that carry the affected instances (a list, a JSON list or a comma-separated string).
_ID_TRAITS = ("instance_ids", "instance_id", "resource_ids")


PROJECT_EVENT_TYPE = "maintenance.scheduled"
HOST_EVENT_TYPE = "maintenance.host"
MAINTENANCE_EVENT_TYPES = frozenset({PROJECT_EVENT_TYPE, HOST_EVENT_TYPE})

# The payload's fields (Fenix's), with what stands in for one the body leaves out.
_PROJECT_FIELDS: dict[str, Any] = {
    "session_id": None,
    "project_id": None,
    "instance_ids": list,
    "allowed_actions": list,
    "state": None,
    "actions_at": None,
    "reply_at": None,
    "reply_url": None,
    "metadata": dict,
}
_HOST_FIELDS: dict[str, Any] = {"session_id": None, "host": None, "state": None}
# Traits the notifier adds that are not part of the payload.
_ENVELOPE_TRAITS = frozenset({"tenant_id", "vigil_notification_id"})


class BadNotification(ValueError):
    """The body is neither an Aodh alarm nor a SOL 003 alarm notification."""


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    received_at: float
    format: str
    kind: str
    alarm_id: str
    cleared: bool
    severity: str
    resource_ids: tuple[str, ...] = ()
    path: str = "/"
    body: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """What the manager's state shows of it."""
        return {
            "id": self.id,
            "received_at": self.received_at,
            "format": self.format,
            "kind": self.kind,
            "alarm_id": self.alarm_id,
            "cleared": self.cleared,
            "severity": self.severity,
            "resource_ids": list(self.resource_ids),
        }


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _ids(json.loads(text))
            except ValueError:
                pass
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def _event(body: Mapping[str, Any]) -> Mapping[str, Any]:
    reason_data = body.get("reason_data")
    event = reason_data.get("event") if isinstance(reason_data, Mapping) else None
    return event if isinstance(event, Mapping) else {}


def _traits(event: Mapping[str, Any]) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    listed = event.get("traits")
    for trait in listed if isinstance(listed, list) else []:
        if isinstance(trait, list | tuple) and len(trait) >= 3:
            traits[str(trait[0])] = trait[2]
        elif isinstance(trait, Mapping) and "name" in trait:
            traits[str(trait["name"])] = trait.get("value")
    return traits


def _aodh(body: Mapping[str, Any], nid: str, received_at: float, path: str) -> Notification:
    event = _event(body)
    traits = _traits(event)
    ids = [i for name in _ID_TRAITS for i in _ids(traits.get(name))]
    return Notification(
        id=nid or str(traits.get("vigil_notification_id") or body.get("alarm_id", "")),
        received_at=received_at,
        format="aodh",
        kind=str(traits.get("vigil_alarm_kind") or event.get("event_type") or ""),
        alarm_id=str(body.get("alarm_id", "")),
        cleared=body.get("current") == "ok",
        severity=str(body.get("severity", "")),
        resource_ids=_unique(ids),
        path=path,
        body=body,
    )


def _sol003(body: Mapping[str, Any], nid: str, received_at: float, path: str) -> Notification:
    kind_of = body["notificationType"]
    alarm = body.get("alarm") or {}
    cleared = kind_of == "AlarmClearedNotification"
    ids = _ids(alarm.get("vnfcInstanceIds"))
    return Notification(
        id=nid or str(body.get("id", "")),
        received_at=received_at,
        format="sol003",
        kind=str(alarm.get("faultType") or alarm.get("eventType") or kind_of),
        alarm_id=str(alarm.get("id") or body.get("alarmId") or ""),
        cleared=cleared,
        severity="CLEARED" if cleared else str(alarm.get("perceivedSeverity", "")),
        resource_ids=_unique(ids),
        path=path,
        body=body,
    )


def parse_notification(
    body: Any, headers: Mapping[str, str] | None = None, *, received_at: float, path: str = "/"
) -> Notification:
    """One notification from its JSON body and HTTP headers (names in any case)."""
    if not isinstance(body, Mapping):
        raise BadNotification("a notification body is a JSON object")
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    nid = lowered.get(NOTIFICATION_HEADER, "")
    if "notificationType" in body:
        return _sol003(body, nid, received_at, path)
    if "alarm_id" in body or "reason_data" in body:
        return _aodh(body, nid, received_at, path)
    raise BadNotification("neither an Aodh alarm body nor a SOL 003 notification")


@dataclass(frozen=True, slots=True)
class MaintenanceNotice:
    """A maintenance message as an app manager (or an admin) receives it.

    ``payload`` is Fenix's: ``{session_id, project_id, instance_ids,
    allowed_actions, state, actions_at, reply_at, reply_url, metadata}`` for
    a project's message, ``{session_id, host, state}`` for a host's; a field
    the body leaves out is None (an empty list or dict for the lists and
    ``metadata``). ``id`` is the stable notification id, the same on every
    retry.
    """

    id: str
    event_type: str
    payload: dict[str, Any]

    @property
    def is_host(self) -> bool:
        return self.event_type == HOST_EVENT_TYPE

    @property
    def session_id(self) -> str | None:
        value = self.payload.get("session_id")
        return None if value is None else str(value)

    @property
    def state(self) -> str | None:
        value = self.payload.get("state")
        return None if value is None else str(value)


def _structured(value: Any) -> Any:
    """A trait's value, with JSON text of a list or a dict loaded back."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_dict(value: Any) -> dict[str, Any]:
    value = _structured(value)
    return dict(value) if isinstance(value, Mapping) else {}


def parse_maintenance(body: Any, headers: Mapping[str, str] | None = None) -> MaintenanceNotice | None:
    """The maintenance message an Aodh event-alarm body carries, or None if it carries none."""
    if not isinstance(body, Mapping):
        return None
    event = _event(body)
    event_type = event.get("event_type")
    if event_type not in MAINTENANCE_EVENT_TYPES:
        return None
    traits = _traits(event)
    payload = {name: _structured(value) for name, value in traits.items() if name not in _ENVELOPE_TRAITS}
    fields = _HOST_FIELDS if event_type == HOST_EVENT_TYPE else _PROJECT_FIELDS
    for name, default in fields.items():
        if default is list:
            payload[name] = _ids(payload.get(name))
        elif default is dict:
            payload[name] = _as_dict(payload.get(name))
        else:
            payload.setdefault(name, default)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    nid = lowered.get(NOTIFICATION_HEADER) or str(traits.get("vigil_notification_id") or event.get("message_id") or "")
    return MaintenanceNotice(id=nid, event_type=str(event_type), payload=payload)
