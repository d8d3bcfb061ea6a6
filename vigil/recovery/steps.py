"""One durable step of a recovery: the fault's checkpoints and its alarms' changes committed together, their
notifications sent once the commit is done (as every alarm change of Vigil's leaves: after it is durable)."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from vigil.domain.alarms import Alarm, AlarmChange, AlarmKind
from vigil.domain.faults import Fault, Severity
from vigil.domain.model import ResourceType
from vigil.recovery.ports import Alarms, Controller, Publisher


def owner_updates(
    alarms: Alarms,
    fault: Fault,
    now: datetime,
    details: Callable[[Alarm], dict[str, Any] | None],
    *,
    admins: bool = False,
) -> list[AlarmChange]:
    """The owners' ``instance.down`` alarms of ``fault`` (and with ``admins`` its ``host.down``) updated with
    ``details(alarm)`` (None: left alone); only those that changed (a change is a notification)."""
    kinds = {AlarmKind.INSTANCE_DOWN, AlarmKind.HOST_DOWN} if admins else {AlarmKind.INSTANCE_DOWN}
    changes: list[AlarmChange] = []
    for alarm in alarms.of_fault(fault.id):
        if alarm.kind not in kinds or not alarm.active:
            continue
        wanted = details(alarm)
        if wanted:
            change = alarms.update(alarm, now, details=wanted)
            if change is not None:
                changes.append(change)
    return changes


def host_alarm(
    alarms: Alarms, fault: Fault, kind: AlarmKind, severity: Severity, reason: str, now: datetime, **extra: Any
) -> AlarmChange:
    """An admin alarm on the fault's host, raised by a recovery step (``extra``: resource_ids, details)."""
    return alarms.raise_alarm(
        cause=fault.id,
        kind=kind,
        project=None,
        resource_type=ResourceType.HOST,
        resource_id=fault.resource_id,
        severity=severity,
        fault=fault.id,
        reason=reason,
        now=now,
        **extra,
    )


async def record_step(
    controller: Controller,
    publisher: Publisher,
    fault: Fault,
    why: str,
    now: datetime,
    changes: Sequence[AlarmChange],
    also: Callable[[Any], None] | None = None,
) -> None:
    """Commit ``fault`` and ``changes`` (and what ``also`` does in the same unit of work), then notify."""
    uow = controller.begin(why, now=now)
    if also is not None:
        also(uow)
    for change in changes:
        uow.record(change.alarm)
    uow.record(fault)
    # Not the fault's: its profile's T05..T09 are its first notification's, which these updates must not overwrite.
    deliveries = publisher.publish(changes, None, uow, start=False)
    await controller.commit(uow)
    publisher.deliver(deliveries, None)
