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
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NOTIFICATION_HEADER = "x-vigil-notification-id"

# Aodh event traits that carry the affected instances (a list, a JSON list or a comma-separated string).
_ID_TRAITS = ("instance_ids", "instance_id", "resource_ids")


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


def _aodh(body: Mapping[str, Any], nid: str, received_at: float, path: str) -> Notification:
    event = (body.get("reason_data") or {}).get("event") or {}
    traits: dict[str, Any] = {}
    for trait in event.get("traits") or []:
        if isinstance(trait, list | tuple) and len(trait) >= 3:
            traits[str(trait[0])] = trait[2]
        elif isinstance(trait, Mapping) and "name" in trait:
            traits[str(trait["name"])] = trait.get("value")
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
