"""Alarms: what Vigil tells consumers and admins about a fault.

One fault raises:

* one ``host.down`` (or ``switch.down``) alarm for admins, with the physical
  details (host, monitor, cause);
* one ``instance.down`` alarm per affected project, listing that project's
  affected instances in ``resource_ids``: the abstracted "host failure
  affecting your instances" of Doctor's requirements, with no physical
  detail beyond Nova's ``host_status``; as an ETSI SOL 003 alarm lists the
  affected VNFC instances of one VNF;
* ``server_group.degraded`` when at least the group's threshold of members
  are down.

An alarm is RAISED, then possibly UPDATED (severity or affected resources
change, ``version`` goes up), then CLEARED; it is acknowledged once.

An alarm's id is derived from what raised it (the fault, or the event that
raised a warning) and its subject (:func:`alarm_id`), so raising it again
after a crash gives the same alarm, not a second one.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType

from vigil.domain.errors import IllegalTransition
from vigil.domain.faults import FaultId, Severity

AlarmId = NewType("AlarmId", str)

_ALARM_NAMESPACE = uuid.UUID("8a4e2f61-7c3b-4d9a-b0e5-6f1d2c3b4a59")


def alarm_id(cause: str, kind: str, resource_id: str, project: str | None) -> AlarmId:
    """The id of the alarm of ``kind`` on ``resource_id`` (for ``project``) that ``cause`` raises."""
    return AlarmId(str(uuid.uuid5(_ALARM_NAMESPACE, f"{cause}/{kind}/{resource_id}/{project or ''}")))


class AlarmKind(StrEnum):
    HOST_DOWN = "host.down"
    HOST_DEGRADED = "host.degraded"
    SWITCH_DOWN = "switch.down"
    INSTANCE_DOWN = "instance.down"
    GROUP_DEGRADED = "server_group.degraded"
    SUBSCRIPTION_UNREACHABLE = "subscription.unreachable"
    VIM_UNREACHABLE = "vim.unreachable"
    HOST_FENCE_FAILED = "host.fence_failed"  # a failed host could not be fenced: nothing of it is recovered
    HOST_RECOVERY_FAILED = "host.recovery_failed"  # a fenced host's instances that could not be evacuated
    DEDUCED = "deduced"  # raised by a rule template's raise_alarm (its alarm_name in details), Vitrage's deduced alarm


class AlarmState(StrEnum):
    ACTIVE = "ACTIVE"
    CLEARED = "CLEARED"


class AckState(StrEnum):
    UNACKNOWLEDGED = "UNACKNOWLEDGED"
    ACKNOWLEDGED = "ACKNOWLEDGED"


class Lifecycle(StrEnum):
    """What happened to an alarm: the notification's trigger."""

    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"


@dataclass(slots=True)
class Alarm:
    """One alarm. ``project`` None means an admin (infrastructure) alarm."""

    id: AlarmId
    kind: AlarmKind
    project: str | None
    resource_type: str
    resource_id: str
    severity: Severity
    state: AlarmState
    ack_state: AckState
    fault: FaultId
    raised_at: datetime
    changed_at: datetime
    cleared_at: datetime | None = None
    version: int = 1
    reason: str = ""
    resource_ids: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return self.id

    @property
    def active(self) -> bool:
        return self.state is AlarmState.ACTIVE

    def update(
        self,
        now: datetime,
        *,
        severity: Severity | None = None,
        resource_ids: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Change severity, affected resources or details (merged in) of an active alarm; True if anything
        changed."""
        if not self.active:
            raise IllegalTransition("alarm", self.id, str(self.state), "UPDATED")
        changed = False
        if details and any(self.details.get(k, object()) != v for k, v in details.items()):
            self.details = {**self.details, **details}
            changed = True
        if severity is not None and severity != self.severity:
            self.severity = severity
            changed = True
        if resource_ids is not None and resource_ids != self.resource_ids:
            self.resource_ids = list(resource_ids)
            changed = True
        if changed:
            self.version += 1
            self.changed_at = now
        return changed

    def clear(self, now: datetime) -> None:
        if not self.active:
            raise IllegalTransition("alarm", self.id, str(self.state), str(AlarmState.CLEARED))
        self.state = AlarmState.CLEARED
        self.cleared_at = now
        self.changed_at = now
        self.version += 1

    def acknowledge(self) -> None:
        """Acknowledging twice is harmless (SOL 003 PATCH is idempotent)."""
        self.ack_state = AckState.ACKNOWLEDGED


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """An alarm as it stood right after one lifecycle step."""

    lifecycle: Lifecycle
    alarm: Alarm
    previous_severity: Severity | None = None
