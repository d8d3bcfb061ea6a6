"""Prometheus Alertmanager's webhook (payload version 4) mapped to southbound reports; pure.

Alertmanager posts a group of alerts::

    {"version": "4", "groupKey", "truncatedAlerts", "status": "firing"|"resolved", "receiver",
     "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
     "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}

Each alert whose ``alertname`` label the mapping names becomes one report:
a firing alert ``<family>.down`` at its ``startsAt``, a resolved one
``<family>.up`` at its ``endsAt``, from monitor ``alertmanager`` with the
alert's ``fingerprint`` as ``monitor_event_id``. Alertmanager sends a firing
alert again at every ``repeat_interval`` (and with each change of its group)
with the same fingerprint and ``startsAt``: the intake answers those
``duplicate``. The host is the value of the mapping's ``host_label``
(``instance`` by default, its ``:port`` stripped), looked up in ``hosts``
(e.g. ``10.0.0.11`` to ``compute-1``) or taken as it is. ``related_to`` (what
failed on the host, for the non-critical families) is the ``related_label``'s
value (``device``: node_exporter's NIC), else the alert's name. The alert's
name and its ``severity`` label are also the alarm's, as Vitrage's Prometheus
datasource names and grades it, for rule templates.

An alert whose name is not mapped is ignored (Alertmanager would only send it
again). A mapped alert without its host label, or a resolved alert without an
end, is bad input, and then none of the payload is applied.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vigil.domain.faults import EventId, EventStatus, FaultEvent
from vigil.monitor.reports import (
    MAX_CAUSE,
    MAX_ID,
    MAX_SEVERITY,
    BadInput,
    Ignored,
    Mapped,
    bounded,
    clipped,
    event_type,
)

VERSION = "4"
MONITOR = "alertmanager"
ALERTNAME = "alertname"
ZERO_YEAR = 1  # Go's zero time, 0001-01-01T00:00:00Z: "no end yet"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    status: AlertStatus
    labels: Mapping[str, str]
    starts_at: datetime
    fingerprint: str
    ends_at: datetime | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get(ALERTNAME, "")

    @property
    def alarm(self) -> dict[str, str]:
        """The alarm as Vitrage's Prometheus datasource gives it (what templates match): its alertname, and the
        ``severity`` label."""
        found = {"name": self.name, "severity": self.labels.get("severity", "")}
        return {k: v[:MAX_CAUSE] for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook payload (the fields Vigil reads)."""

    version: str
    alerts: Sequence[Alert]
    status: str = ""
    receiver: str = ""
    group_key: str = ""
    truncated_alerts: int = 0


@dataclass(frozen=True, slots=True)
class AlertMapping:
    """Which label names the host, and which alert names mean which event family (``compute.host``, ...)."""

    alerts: Mapping[str, str]
    host_label: str = "instance"
    strip_port: bool = True
    hosts: Mapping[str, str] = field(default_factory=dict)
    related_label: str | None = "device"
    monitor: str = MONITOR


def host_of(value: str, strip_port: bool) -> str:
    """``10.0.0.11`` from ``10.0.0.11:9100``, ``::1`` from ``[::1]:9100``; a bare IPv6 address or a name as it is."""
    if not strip_port:
        return value
    if value.startswith("["):
        inside, bracket, _ = value[1:].partition("]")
        return inside if bracket else value
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and name and ":" not in name:
        return name
    return value


def reports(
    notification: Notification,
    mapping: AlertMapping,
    *,
    received_at: datetime,
    new_id: Callable[[], str],
) -> Mapped:
    """The payload's alerts as southbound reports (see the module); BadInput names the first bad alert."""
    if notification.version != VERSION:
        raise BadInput(f"version {notification.version!r}: Vigil takes Alertmanager's webhook version {VERSION}")
    mapped = Mapped(truncated=notification.truncated_alerts)
    for index, alert in enumerate(notification.alerts):
        family = mapping.alerts.get(alert.name)
        if family is None:
            why = f"alertname {alert.name!r} is not mapped (ingest.alertmanager.alerts)" if alert.name else "unnamed"
            mapped.ignored.append(Ignored(alert.name or "(no alertname)", alert.fingerprint, why))
            continue
        try:
            mapped.events.append(_report(alert, family, mapping, received_at, new_id))
        except BadInput as exc:
            raise BadInput(f"alerts[{index}] ({alert.name}, fingerprint {alert.fingerprint}): {exc}") from None
    return mapped


def _report(
    alert: Alert, family: str, mapping: AlertMapping, received_at: datetime, new_id: Callable[[], str]
) -> FaultEvent:
    label = alert.labels.get(mapping.host_label)
    if not label:
        raise BadInput(f"no label {mapping.host_label!r} names its host (ingest.alertmanager.host_label)")
    host = host_of(label, mapping.strip_port)
    hostname = bounded(mapping.hosts.get(host, host), MAX_ID, f"host {host!r}")
    if alert.status is AlertStatus.FIRING:
        status, at = EventStatus.DOWN, alert.starts_at
    else:
        if alert.ends_at is None or alert.ends_at.year <= ZERO_YEAR:
            raise BadInput("a resolved alert without endsAt")
        status, at = EventStatus.UP, alert.ends_at
    related = alert.labels.get(mapping.related_label) if mapping.related_label else None
    annotations = alert.annotations
    cause = annotations.get("summary") or annotations.get("description") or alert.name
    return FaultEvent(
        id=EventId(new_id()),
        time=at,
        type=event_type(family, status),
        hostname=hostname,
        status=status,
        monitor=mapping.monitor,
        monitor_event_id=bounded(alert.fingerprint, MAX_ID, "fingerprint"),
        received_at=received_at,
        severity=clipped(alert.labels.get("severity"), MAX_SEVERITY),
        cause=clipped(cause, MAX_CAUSE),
        related_to=bounded(related or alert.name, MAX_ID, "related_to"),
        alarm=alert.alarm,
    )
