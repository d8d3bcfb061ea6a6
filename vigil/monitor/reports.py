"""What the adapters for others' monitors share: bad input, what they ignore, and the bounds of a report.

:mod:`vigil.monitor.alertmanager` and :mod:`vigil.monitor.zabbix` map a
payload to a :class:`Mapped` batch of southbound reports, or raise
:class:`BadInput`; :mod:`vigil.monitor.ingest` hands the batch to the intake.
"""

from dataclasses import dataclass, field

from vigil.domain.faults import EventStatus, FaultEvent

MAX_ID = 255  # hostname, monitor_event_id, related_to: what the southbound API takes
MAX_CAUSE = 1024
MAX_SEVERITY = 64


class BadInput(ValueError):
    """A payload that cannot be taken: its message says what and where. Nothing of its batch is applied."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """Something a monitor sent that Vigil does not act on (not mapped): its name, its id, and why."""

    name: str
    id: str
    reason: str


@dataclass(slots=True)
class Mapped:
    """A batch mapped to southbound reports, and what was ignored of it."""

    events: list[FaultEvent] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    truncated: int = 0  # alerts Alertmanager left out of the payload (its max_alerts)


def bounded(value: str, limit: int, what: str) -> str:
    """``value`` if it fits the southbound API's bound for ``what`` and holds no NUL; BadInput otherwise."""
    if not value:
        raise BadInput(f"{what} is empty")
    if len(value) > limit:
        raise BadInput(f"{what} is over {limit} characters")
    if "\x00" in value:
        raise BadInput(f"{what} holds a NUL character")
    return value


def clipped(value: str | None, limit: int) -> str | None:
    """Free text (a cause, a severity) cut to its column's size, without NUL; None when empty."""
    if not value:
        return None
    return value.replace("\x00", "")[:limit] or None


def event_type(family: str, status: EventStatus) -> str:
    """``compute.host.down`` from the family and the direction."""
    return f"{family}.{status}"
