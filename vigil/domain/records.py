"""Records other than resources that Vigil keeps durable, by kind.

Resources are keyed by :class:`~vigil.domain.model.ResourceType`; these
records by :class:`RecordKind`. A change batch holds both, keyed by
``(kind, ident)``, so one transaction makes a fault, its resource changes,
its alarms and its notifications' outbox entries durable together.
"""

from enum import StrEnum

from vigil.domain.alarms import Alarm
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import Fault, FaultEvent
from vigil.domain.findings import HostFindings
from vigil.domain.maintenance import GroupConstraints, InstanceConstraints, MaintenanceSession
from vigil.domain.subscriptions import Subscription


class RecordKind(StrEnum):
    FAULT_EVENT = "fault_event"
    FAULT = "fault"
    ALARM = "alarm"
    SUBSCRIPTION = "subscription"
    DELIVERY = "delivery"
    MAINTENANCE_SESSION = "maintenance_session"
    INSTANCE_CONSTRAINTS = "instance_constraints"
    GROUP_CONSTRAINTS = "group_constraints"
    HOST_FINDINGS = "host_findings"


Record = (
    FaultEvent
    | Fault
    | Alarm
    | Subscription
    | Delivery
    | MaintenanceSession
    | InstanceConstraints
    | GroupConstraints
    | HostFindings
)

RECORD_KINDS: dict[type, RecordKind] = {
    FaultEvent: RecordKind.FAULT_EVENT,
    Fault: RecordKind.FAULT,
    Alarm: RecordKind.ALARM,
    Subscription: RecordKind.SUBSCRIPTION,
    Delivery: RecordKind.DELIVERY,
    MaintenanceSession: RecordKind.MAINTENANCE_SESSION,
    InstanceConstraints: RecordKind.INSTANCE_CONSTRAINTS,
    GroupConstraints: RecordKind.GROUP_CONSTRAINTS,
    HostFindings: RecordKind.HOST_FINDINGS,
}


def record_kind(record: Record) -> RecordKind:
    return RECORD_KINDS[type(record)]
