"""The alarm book: the open alarms, indexed by fault and active resource.

Raising, updating and clearing go through here so each returns the
:class:`~vigil.domain.alarms.AlarmChange` the notifier fans out, and so an
alarm is never raised twice for the same thing: ``active(kind, resource)``
finds the one already raised.

Only open alarms live here (and the last ``RECENT`` cleared ones, so an
alarm cleared a moment ago is still found while its clearing is being
written): memory does not grow with history. The history is the store's
(``vigil.store.reads``), paged by the API.
"""

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vigil.domain.alarms import AckState, Alarm, AlarmChange, AlarmId, AlarmKind, AlarmState, Lifecycle, alarm_id
from vigil.domain.errors import NotFound
from vigil.domain.faults import FaultId, Severity

# How many cleared alarms stay in memory after their clearing.
RECENT = 10_000


class AlarmBook:
    def __init__(self, recent: int = RECENT) -> None:
        self._alarms: dict[AlarmId, Alarm] = {}  # open alarms
        self._recent: OrderedDict[AlarmId, Alarm] = OrderedDict()  # the last cleared ones
        self._keep = recent
        self._by_fault: dict[FaultId, list[Alarm]] = {}  # open alarms by fault
        self._active: dict[tuple[AlarmKind, str, str | None], Alarm] = {}

    def load(self, alarms: Iterable[Alarm]) -> None:
        """The open alarms a restart found in the store."""
        for alarm in alarms:
            if alarm.active:
                self._index(alarm)

    def _index(self, alarm: Alarm) -> None:
        self._alarms[alarm.id] = alarm
        self._by_fault.setdefault(alarm.fault, []).append(alarm)
        self._active[(alarm.kind, alarm.resource_id, alarm.project)] = alarm

    def raise_alarm(
        self,
        *,
        cause: str,
        kind: AlarmKind,
        project: str | None,
        resource_type: str,
        resource_id: str,
        severity: Severity,
        fault: FaultId,
        reason: str,
        now: datetime,
        resource_ids: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> AlarmChange:
        """Raise an alarm whose id derives from ``cause`` (the fault, or the event that raised
        it) and its subject, so raising it again after a crash gives the same alarm."""
        alarm = Alarm(
            id=alarm_id(cause, kind, resource_id, project),
            kind=kind,
            project=project,
            resource_type=resource_type,
            resource_id=resource_id,
            severity=severity,
            state=AlarmState.ACTIVE,
            ack_state=AckState.UNACKNOWLEDGED,
            fault=fault,
            raised_at=now,
            changed_at=now,
            reason=reason,
            resource_ids=list(resource_ids or []),
            details=dict(details or {}),
        )
        self._index(alarm)
        return AlarmChange(Lifecycle.RAISED, alarm)

    def update(
        self,
        alarm: Alarm,
        now: datetime,
        *,
        severity: Severity | None = None,
        resource_ids: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> AlarmChange | None:
        """None when nothing changed, so no notification goes out."""
        previous = alarm.severity
        if not alarm.update(now, severity=severity, resource_ids=resource_ids, details=details):
            return None
        return AlarmChange(Lifecycle.UPDATED, alarm, previous_severity=previous)

    def clear(self, alarm: Alarm, now: datetime) -> AlarmChange:
        previous = alarm.severity
        alarm.clear(now)
        self._active.pop((alarm.kind, alarm.resource_id, alarm.project), None)
        self._alarms.pop(alarm.id, None)
        siblings = [a for a in self._by_fault.get(alarm.fault, []) if a is not alarm]
        if siblings:
            self._by_fault[alarm.fault] = siblings
        else:
            self._by_fault.pop(alarm.fault, None)
        self._recent[alarm.id] = alarm
        if len(self._recent) > self._keep:
            self._recent.popitem(last=False)
        return AlarmChange(Lifecycle.CLEARED, alarm, previous_severity=previous)

    def active(self, kind: AlarmKind, resource_id: str, project: str | None = None) -> Alarm | None:
        return self._active.get((kind, resource_id, project))

    def get(self, ident: str) -> Alarm:
        """An open alarm, or one cleared recently; NotFound otherwise (the store has the rest)."""
        alarm = self._alarms.get(AlarmId(ident)) or self._recent.get(AlarmId(ident))
        if alarm is None:
            raise NotFound("alarm", ident)
        return alarm

    def of_fault(self, fault: str) -> list[Alarm]:
        """The open alarms of a fault."""
        return list(self._by_fault.get(FaultId(fault), []))

    def open(self, kind: AlarmKind | None = None) -> list[Alarm]:
        """The open alarms (of ``kind``), in raise order."""
        return [a for a in self._alarms.values() if kind is None or a.kind is kind]

    def __len__(self) -> int:
        return len(self._alarms)
