"""Raw fault events from monitors, and the faults the inspector opens from them.

A :class:`FaultEvent` is what a monitor reported (Doctor's southbound event:
``{"time", "type", "details": {"hostname", "status", "monitor",
"monitor_event_id", ...}}``), stamped with when Vigil received it. A
:class:`Fault` is the inspector's record of one failure of one physical
resource (a host or a switch): the events that opened and cleared it, what
it affected, and the Doctor profiler checkpoints of its handling.

Checkpoints are Unix times in seconds (``time.time()``), because T00 and T09
are taken by other processes (the fault injector and the consumer) on the
same machine; differences are reported in milliseconds.

Identities are derived, not drawn: a fault's id from the event that opened
it (:func:`fault_id`), an alarm's from what caused it and its subject
(``vigil.domain.alarms.alarm_id``), a notification's from its alarm's
version and the subscription. An event applied again after a crash
therefore opens the same fault, raises the same alarms and sends the same
notifications, which a consumer can drop as duplicates.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import NewType

FaultId = NewType("FaultId", str)
EventId = NewType("EventId", str)

_FAULT_NAMESPACE = uuid.UUID("3d0c7a52-9b1e-4f3a-8e6d-1c2b5a4f7e90")


def fault_id(opening_event: str) -> FaultId:
    """The id of the fault an event opens: the same event always opens the same fault."""
    return FaultId(str(uuid.uuid5(_FAULT_NAMESPACE, f"fault/{opening_event}")))


def derived_event_id(event: str, purpose: str) -> EventId:
    """The id of an event Vigil makes from another (a suppressed failure applied after maintenance)."""
    return EventId(str(uuid.uuid5(_FAULT_NAMESPACE, f"event/{event}/{purpose}")))


class EventStatus(StrEnum):
    DOWN = "down"
    UP = "up"


class Severity(StrEnum):
    """ETSI NFV-SOL 003 perceivedSeverity (CLEARED marks a cleared alarm)."""

    CRITICAL = "CRITICAL"
    MAJOR = "MAJOR"
    MINOR = "MINOR"
    WARNING = "WARNING"
    INDETERMINATE = "INDETERMINATE"
    CLEARED = "CLEARED"


class FaultState(StrEnum):
    ACTIVE = "ACTIVE"
    CLEARED = "CLEARED"


class Outcome(StrEnum):
    """What became of a southbound event.

    ACCEPTED is the journal's word: durable, not yet applied. Every other
    outcome is final; after a crash, the events still ACCEPTED are applied
    again, in journal order.
    """

    ACCEPTED = "accepted"
    FAULT_OPENED = "fault_opened"
    CORRELATED = "correlated"
    AGGREGATED = "aggregated"
    DUPLICATE = "duplicate"
    SUPPRESSED = "suppressed"
    DAMPED = "damped"
    HELD = "held"
    FAULT_CLEARED = "fault_cleared"
    RECOVERED = "recovered"
    NO_ACTIVE_FAULT = "no_active_fault"
    UNKNOWN_HOST = "unknown_host"
    NOT_APPLIED = "not_applied"


class Checkpoint(StrEnum):
    """Doctor's profiler checkpoints."""

    T00 = "T00"  # fault injected (reported by the injector, if it knows)
    T01 = "T01"  # detected (the monitor's event time)
    T02 = "T02"  # affected resources found
    T03 = "T03"  # instances set to ERROR
    T04 = "T04"  # host marked down
    T05 = "T05"  # notifier: alarms matched to subscriptions
    T06 = "T06"  # notifier: notifications rendered
    T07 = "T07"  # notifier: first notification sent
    T08 = "T08"  # notifier: last notification sent
    T09 = "T09"  # last consumer received (reported in the consumer's answer)
    # After T09, off the notification's path: fencing the failed host (vigil.recovery).
    FENCE_REQUESTED = "fence_requested"
    FENCE_CONFIRMED = "fence_confirmed"  # its power read off: its instances may be recovered
    FENCE_FAILED = "fence_failed"  # an error, a timeout, or power still on: nothing of it is recovered
    RECOVERY_STARTED = "recovery_started"  # its instances' evacuations sent (their policy evacuates)
    RECOVERED = "recovered"  # the last of them ended (ACTIVE elsewhere, or failed)


# (monitor, monitor_event_id, the detection time in UTC): what makes two reports the same report.
DedupKey = tuple[str, str, datetime]


def dedup_key(monitor: str, monitor_event_id: str, time: datetime) -> DedupKey:
    """The key of a report, its time normalised to UTC (the same moment written in another zone is the same)."""
    return (monitor, monitor_event_id, time.astimezone(UTC))


@dataclass(slots=True)
class FaultEvent:
    """One southbound event, as received and recorded."""

    id: EventId
    time: datetime
    type: str
    hostname: str
    status: EventStatus
    monitor: str
    monitor_event_id: str
    received_at: datetime
    severity: str | None = None
    cause: str | None = None
    related_to: str | None = None
    injected_at: float | None = None
    outcome: Outcome = Outcome.ACCEPTED
    fault: FaultId | None = None
    seq: int | None = None  # the journal's order; None for events recorded before there was a journal
    # The alarm as its monitor names and grades it, which rule templates in Vitrage's format match: ``name``,
    # ``rawtext`` and ``severity`` as Vitrage's datasources give them (a Zabbix trigger's name, its unexpanded
    # TRIGGER.NAME.ORIG and its priority's name, HIGH; a Prometheus alert's alertname). Empty for Doctor's events.
    alarm: dict[str, str] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return self.id

    @property
    def dedup_key(self) -> DedupKey:
        """Doctor monitors number their events, and a retry re-sends the same body: a repeat of
        (monitor, id, detection time) is the same event. The time is part of it because a
        monitor's ids need not be unique over its life: Doctor's sample monitor sends
        ``monitor_sample_event1`` on every run, and its second run's failure is a new one."""
        return dedup_key(self.monitor, self.monitor_event_id, self.time)


@dataclass(slots=True)
class Fault:
    """The inspector's record of one failure of one host or switch."""

    id: FaultId
    type: str
    resource_type: str
    resource_id: str
    severity: Severity
    state: FaultState
    opened_at: datetime
    cleared_at: datetime | None = None
    events: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)
    checkpoints: dict[str, float] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return self.id

    def mark(self, checkpoint: Checkpoint, at: float, *, keep_first: bool = True) -> None:
        """Record a checkpoint; by default the first time it is reached wins."""
        if keep_first and checkpoint in self.checkpoints:
            return
        self.checkpoints[checkpoint] = at

    def profile_ms(self) -> dict[str, float]:
        """Each checkpoint in milliseconds after T01 (detection)."""
        base = self.checkpoints.get(Checkpoint.T01)
        if base is None:
            return {}
        return {name: round((at - base) * 1000, 3) for name, at in sorted(self.checkpoints.items())}


@dataclass(slots=True)
class Impact:
    """What a fault action changed: the hosts, and the instances and ports it took down.

    ``by_project`` groups the affected instances by owner (one tenant alarm
    each); ``groups`` are the server groups with a member among them.
    """

    hosts: list[str] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    by_project: dict[str, list[str]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
