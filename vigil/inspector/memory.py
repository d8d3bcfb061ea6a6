"""What the inspector remembers of each host between reports, and writes down as it changes.

Three things decide how the next report of a host is read, besides the
resource map and the open faults: its non-critical failures still down (the
:class:`~vigil.inspector.aggregation.Aggregator`), the latest report of each
failure while it was in maintenance (*suppressed*), and the recoveries held
back until they have lasted the hold-down (*held*). :class:`HostMemory` keeps
them, notes which hosts a unit of work changed, and :meth:`HostMemory.record`
writes each such host's :class:`~vigil.domain.findings.HostFindings` into
that unit of work (or deletes it when nothing is left), so the memory is as
durable as the effects it explains and a restart (:meth:`HostMemory.load`)
judges the next report as the last run would have.

Targets are host names, or switch names for switch-wide failures; failures
are keyed as ``vigil.inspector.inspector.failure_key`` makes them.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from vigil.domain.faults import FaultEvent
from vigil.domain.findings import HostFindings
from vigil.inspector.aggregation import Aggregator
from vigil.inspector.ports import UnitOfWork


class HostMemory:
    def __init__(self) -> None:
        self.aggregator = Aggregator()
        # target → failure key → the latest event suppressed while it was in maintenance
        self._suppressed: dict[str, dict[str, FaultEvent]] = {}
        # target → failure key → the recovery held back until the hold-down has passed
        self._held: dict[str, dict[str, FaultEvent]] = {}
        self._dirty: set[str] = set()  # targets the unit of work being applied changed

    def load(self, findings: Sequence[HostFindings], events: Mapping[str, FaultEvent]) -> None:
        """Each host's findings after a restart; ``events`` by id holds the events they name."""
        for found in findings:
            for key, at in found.failures.items():
                self.aggregator.add(found.host, key, at)
            for target, ids in ((self._suppressed, found.suppressed), (self._held, found.held)):
                kept = {key: events[ident] for key, ident in ids.items() if ident in events}
                if kept:
                    target[found.host] = kept

    def record(self, uow: UnitOfWork) -> None:
        """Write the findings of every target changed since the last call into ``uow``."""
        for target in sorted(self._dirty):
            findings = HostFindings(
                host=target,
                failures=self.aggregator.times(target),
                suppressed={k: e.id for k, e in self._suppressed.get(target, {}).items()},
                held={k: e.id for k, e in self._held.get(target, {}).items()},
            )
            if findings.empty:
                uow.forget(findings)
            else:
                uow.record(findings)
        self._dirty = set()

    def changed(self, target: str) -> None:
        """The aggregator's failures of ``target`` changed (the others note their own changes)."""
        self._dirty.add(target)

    # -- suppressed while in maintenance ----------------------------------------

    def suppress(self, target: str, key: str, event: FaultEvent) -> None:
        self._suppressed.setdefault(target, {})[key] = event
        self._dirty.add(target)

    def suppressed(self, target: str) -> dict[str, FaultEvent]:
        return dict(self._suppressed.get(target, {}))

    def suppressed_targets(self) -> list[str]:
        return list(self._suppressed)

    def drop_suppressed(self, target: str) -> None:
        if self._suppressed.pop(target, None) is not None:
            self._dirty.add(target)

    # -- held recoveries -------------------------------------------------------------

    def hold(self, target: str, key: str, event: FaultEvent) -> None:
        self._held.setdefault(target, {})[key] = event
        self._dirty.add(target)

    def held_event(self, target: str, key: str) -> FaultEvent | None:
        return self._held.get(target, {}).get(key)

    def unhold(self, target: str, key: str) -> None:
        by_key = self._held.get(target, {})
        by_key.pop(key, None)
        if not by_key:
            self._held.pop(target, None)
        self._dirty.add(target)

    def held(self, hold_down_s: float) -> list[tuple[str, str, FaultEvent, datetime]]:
        """Every held recovery: (target, failure key, event, when it is due)."""
        delay = timedelta(seconds=hold_down_s)
        return [
            (target, key, event, event.received_at + delay)
            for target, by_key in self._held.items()
            for key, event in by_key.items()
        ]
