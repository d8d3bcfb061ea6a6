"""The alarm book: every alarm, indexed by fault, project and active resource.

Raising, updating and clearing go through here so each returns the
:class:`~vigil.domain.alarms.AlarmChange` the notifier fans out, and so an
alarm is never raised twice for the same thing: ``active(kind, resource)``
finds the one already raised.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vigil.domain.alarms import AckState, Alarm, AlarmChange, AlarmId, AlarmKind, AlarmState, Lifecycle, alarm_id
from vigil.domain.errors import NotFound
from vigil.domain.faults import FaultId, Severity


class AlarmBook:
    def __init__(self) -> None:
        self._alarms: dict[AlarmId, Alarm] = {}
        self._by_fault: dict[FaultId, list[Alarm]] = {}
        self._active: dict[tuple[AlarmKind, str, str | None], Alarm] = {}

    def load(self, alarms: Iterable[Alarm]) -> None:
        for alarm in alarms:
            self._index(alarm)

    def _index(self, alarm: Alarm) -> None:
        self._alarms[alarm.id] = alarm
        self._by_fault.setdefault(alarm.fault, []).append(alarm)
        if alarm.active:
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
        self, alarm: Alarm, now: datetime, *, severity: Severity | None = None, resource_ids: list[str] | None = None
    ) -> AlarmChange | None:
        """None when nothing changed, so no notification goes out."""
        previous = alarm.severity
        if not alarm.update(now, severity=severity, resource_ids=resource_ids):
            return None
        return AlarmChange(Lifecycle.UPDATED, alarm, previous_severity=previous)

    def clear(self, alarm: Alarm, now: datetime) -> AlarmChange:
        previous = alarm.severity
        alarm.clear(now)
        self._active.pop((alarm.kind, alarm.resource_id, alarm.project), None)
        return AlarmChange(Lifecycle.CLEARED, alarm, previous_severity=previous)

    def clear_fault(self, fault: FaultId, now: datetime) -> list[AlarmChange]:
        return [self.clear(a, now) for a in self._by_fault.get(fault, []) if a.active]

    def active(self, kind: AlarmKind, resource_id: str, project: str | None = None) -> Alarm | None:
        return self._active.get((kind, resource_id, project))

    def get(self, ident: str) -> Alarm:
        try:
            return self._alarms[AlarmId(ident)]
        except KeyError:
            raise NotFound("alarm", ident) from None

    def of_fault(self, fault: str) -> list[Alarm]:
        return list(self._by_fault.get(FaultId(fault), []))

    def query(
        self,
        *,
        project: str | None = None,
        admin: bool = True,
        resource_id: str | None = None,
        severity: Severity | None = None,
        state: AlarmState | None = None,
        kind: AlarmKind | None = None,
    ) -> list[Alarm]:
        """Alarms in raise order. A non-admin sees only ``project``'s alarms."""
        found = []
        for alarm in self._alarms.values():
            if not admin and alarm.project != project:
                continue
            if admin and project is not None and alarm.project != project:
                continue
            if resource_id is not None and resource_id != alarm.resource_id and resource_id not in alarm.resource_ids:
                continue
            if severity is not None and alarm.severity is not severity:
                continue
            if state is not None and alarm.state is not state:
                continue
            if kind is not None and alarm.kind is not kind:
                continue
            found.append(alarm)
        return found
