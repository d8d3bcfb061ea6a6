"""The inspector: southbound events in, consistent states and alarms out.

:meth:`Inspector.apply` handles events the intake (``vigil.inspector.intake``)
has made durable, in journal order, inside one unit of work of the
controller, synchronously:

1. An event on a host in maintenance is recorded as ``suppressed``; the
   latest one of each failure is kept, and when the host leaves maintenance
   a failure whose latest word was "down" is applied then (the intake
   journals it again): a host the upgrade broke is not re-enabled silently,
   although its monitor reported it only once, in maintenance. A recovery
   reported in maintenance of a failure open before it is applied too.
2. A failure opens a :class:`~vigil.domain.faults.Fault`: the affected
   instances and ports are found (T02), set to ERROR and DOWN (T03), the
   host marked down (T04); one admin alarm, one alarm per affected project
   and the degraded server groups' alarms are raised and published at once.
   A non-critical failure counts toward its host's aggregation threshold,
   raising a warning until it is reached.
3. A recovery clears the fault: the host comes back up and its alarms
   clear. Instances stay ERROR until their owner acts; a server group's
   alarm clears when its members recover (:meth:`Inspector.reevaluate_groups`).
   An aggregated fault clears once its failures fall below the threshold;
   those still down are warned of again until they recover too.
4. Flap damping: with ``hold_down_s`` set, a recovery is held back until the
   failure has stayed away that long (``held``); a failure reported again
   meanwhile cancels it (``damped``), so a flapping link raises one alarm
   and clears it once. The intake releases a held recovery when its time
   comes (:meth:`Inspector.release`). Monitors that damp at the source (the
   heartbeat monitor's own hold-down) are not held twice.

Everything an event decides is a function of the resource map, the open
faults and alarms, the per-host findings (``vigil.domain.findings``) and
the event itself: times come from the event (when Vigil received it), ids
are derived from it. Applying the same journaled event again after a crash
therefore opens the same fault and raises the same alarms, whose
notifications carry the same ids and bodies.
"""

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vigil.domain.alarms import AlarmChange, AlarmKind
from vigil.domain.deliveries import Delivery
from vigil.domain.errors import DomainError, NotFound
from vigil.domain.faults import (
    Checkpoint,
    EventStatus,
    Fault,
    FaultEvent,
    FaultId,
    FaultState,
    Outcome,
    Severity,
    derived_event_id,
    fault_id,
)
from vigil.domain.findings import HostFindings
from vigil.domain.model import Host, ResourceType, opaque_host_id
from vigil.domain.states import InstanceState
from vigil.inspector import fault_actions
from vigil.inspector.memory import HostMemory
from vigil.inspector.policy import DEFAULT_POLICIES, FaultPolicy, Target, split_type
from vigil.inspector.ports import Alarms, Controller, Publisher, UnitOfWork

log = logging.getLogger(__name__)

TENANT_DESCRIPTION = "host failure affecting your instances"
INSTANCE_DESCRIPTION = "failure of your instance"
# How many cleared faults stay in memory after their clearing.
RECENT_FAULTS = 10_000
# The purpose that derives the id of a suppressed failure applied after maintenance.
AFTER_MAINTENANCE = "after-maintenance"


class UnknownResource(DomainError):
    """An event named a host or switch Vigil does not know; nothing was applied."""


def failure_key(event: FaultEvent, family: str, policy: FaultPolicy) -> str:
    """What one failure is, for aggregation, suppression and damping: its family, and for a
    non-critical family what it relates to (``network.link/eth1``)."""
    if policy.target is Target.INSTANCE:
        return f"{family}/{event.related_to}"
    if policy.critical:
        return family
    return f"{family}/{event.related_to or event.cause or event.monitor_event_id}"


class Inspector:
    def __init__(
        self,
        controller: Controller,
        alarms: Alarms,
        publisher: Publisher,
        *,
        wall: Callable[[], float] = time.time,
        policies: Mapping[str, FaultPolicy] = DEFAULT_POLICIES,
        hold_down_s: float = 0.0,
        self_damping: frozenset[str] = frozenset(),
    ) -> None:
        self._controller = controller
        self._alarms = alarms
        self._publisher = publisher
        self._wall = wall
        self.policies = dict(policies)
        self.hold_down_s = hold_down_s
        self._self_damping = self_damping
        self._memory = HostMemory()
        self._aggregator = self._memory.aggregator
        self._faults: dict[FaultId, Fault] = {}  # the open faults (and the last cleared: _recent)
        self._recent: OrderedDict[FaultId, Fault] = OrderedDict()
        self._open: dict[tuple[str, str], Fault] = {}  # (resource type, id) → active fault
        self._started: list[Delivery] = []  # deliveries started by the unit of work being applied

    # -- state -------------------------------------------------------------

    def load(self, faults: Sequence[Fault], findings: Sequence[HostFindings], events: Mapping[str, FaultEvent]) -> None:
        """Restore faults and each host's findings after a restart; ``events`` by id holds
        the suppressed and held events the findings name."""
        for fault in faults:
            if fault.state is FaultState.ACTIVE:
                self._faults[fault.id] = fault
                self._open[(fault.resource_type, fault.resource_id)] = fault
        self._memory.load(findings, events)

    def fault(self, ident: str) -> Fault:
        """An open fault, or one cleared recently; NotFound otherwise (the store has the rest)."""
        found = self._faults.get(FaultId(ident)) or self._recent.get(FaultId(ident))
        if found is None:
            raise NotFound("fault", ident)
        return found

    def open_faults(self) -> list[Fault]:
        return list(self._faults.values())

    @property
    def faults_by_id(self) -> dict[str, Fault]:
        """The faults in memory: open, and recently cleared."""
        return {**{str(k): v for k, v in self._recent.items()}, **{str(k): v for k, v in self._faults.items()}}

    def held(self) -> list[tuple[str, str, FaultEvent, datetime]]:
        """Every held recovery: (target, failure key, event, when it is due)."""
        return self._memory.held(self.hold_down_s)

    def suppressed_out_of_maintenance(self) -> dict[str, list[FaultEvent]]:
        """Failures still suppressed on hosts no longer in maintenance (a restart came between)."""
        found: dict[str, list[FaultEvent]] = {}
        for host in self._memory.suppressed_targets():
            try:
                in_maintenance = self._controller.map.host(host).in_maintenance
            except NotFound:
                continue
            if not in_maintenance:
                found[host] = list(self._memory.suppressed(host).values())
        return found

    def take_suppressed(self, host: str) -> list[FaultEvent]:
        """The latest suppressed event of each failure of ``host`` that still matters: a failure
        still down, or a recovery of a failure that was open before maintenance began."""
        wanted: list[FaultEvent] = []
        for key, event in self._memory.suppressed(host).items():
            family, direction = split_type(event.type, event.status)
            if direction is EventStatus.DOWN or self._recovers(host, key, family, self.policies[family]):
                wanted.append(event)
        return sorted(wanted, key=lambda e: (e.seq or 0, e.received_at))

    def known(self, event: FaultEvent) -> bool:
        family, _ = split_type(event.type, event.status)
        policy = self.policies.get(family, FaultPolicy())
        try:
            if policy.target is Target.SWITCH:
                self._controller.map.switch(event.hostname)
            elif policy.target is Target.INSTANCE:
                inst = self._controller.map.instance(event.related_to or "")
                return inst.host is not None and inst.state is not InstanceState.DELETED
            else:
                self._controller.map.host(event.hostname)
        except NotFound:
            return False
        return True

    def subject(self, event: FaultEvent) -> str:
        """What the event names: its host or switch, or for an instance-level event the instance."""
        family, _ = split_type(event.type, event.status)
        if self.policies.get(family, FaultPolicy()).target is Target.INSTANCE:
            return f"instance {event.related_to or '(none: related_to names it)'}"
        return event.hostname

    # -- applying a unit of work ---------------------------------------------

    def apply(self, events: Sequence[FaultEvent], uow: UnitOfWork) -> list[Delivery]:
        """Handle journaled events in ``uow`` (events already ``duplicate`` are only recorded);
        return the deliveries started (their notifications are already under way)."""
        self._started = []
        for event in events:
            if event.outcome is Outcome.ACCEPTED:
                self._handle(event, uow)
            uow.record(event)
        return self._finish(uow)

    def apply_after_maintenance(self, host: str, events: Sequence[FaultEvent], uow: UnitOfWork) -> list[Delivery]:
        """``host`` left maintenance: drop what was suppressed on it, and apply ``events``, the
        failures still down it had suppressed, journaled again (:meth:`take_suppressed`)."""
        self._started = []
        self._memory.drop_suppressed(host)
        for event in events:
            self._handle(event, uow)
            uow.record(event)
        return self._finish(uow)

    def release(self, target: str, key: str, event_id: str, at: datetime, uow: UnitOfWork) -> list[Delivery]:
        """Apply a held recovery whose hold-down has passed (no-op if it was damped meanwhile)."""
        self._started = []
        event = self._memory.held_event(target, key)
        if event is not None and event.id == event_id:
            self._memory.unhold(target, key)
            event.outcome = Outcome.ACCEPTED
            self._act(event, uow, at)
            uow.record(event)
        return self._finish(uow)

    def _finish(self, uow: UnitOfWork) -> list[Delivery]:
        self._memory.record(uow)
        started, self._started = self._started, []
        return started

    def _handle(self, event: FaultEvent, uow: UnitOfWork) -> None:
        family, direction = split_type(event.type, event.status)
        policy = self.policies[family]
        target = event.hostname
        key = failure_key(event, family, policy)
        self._forget_reapplied(target, event)
        if policy.target is not Target.SWITCH and self._host_in_maintenance(event, policy):
            event.outcome = Outcome.SUPPRESSED
            self._memory.suppress(target, key, event)
            return
        held = self._memory.held_event(target, key)
        if direction is EventStatus.DOWN and held is not None:
            # The failure is back before its recovery was told: nobody hears of either.
            self._memory.unhold(target, key)
            held.outcome = Outcome.DAMPED
            uow.record(held)
            event.outcome = Outcome.DAMPED
            event.fault = held.fault
            return
        if direction is EventStatus.UP and self._damped(event) and self._recovers(target, key, family, policy):
            if held is not None:
                event.outcome = Outcome.DAMPED  # already held: the first recovery's hold-down stands
                return
            self._memory.hold(target, key, event)
            event.outcome = Outcome.HELD
            return
        self._act(event, uow, event.received_at)

    def _host_in_maintenance(self, event: FaultEvent, policy: FaultPolicy) -> bool:
        """Whether the host the event concerns (an instance's: where it runs) is in maintenance."""
        rmap = self._controller.map
        if policy.target is Target.INSTANCE:
            host = rmap.instance(event.related_to or "").host
            return host is not None and rmap.host(host).in_maintenance
        return rmap.host(event.hostname).in_maintenance

    def _damped(self, event: FaultEvent) -> bool:
        return self.hold_down_s > 0 and event.monitor not in self._self_damping

    def _recovers(self, target: str, key: str, family: str, policy: FaultPolicy) -> bool:
        """Whether an up event for this failure would change anything (else nothing to hold)."""
        if policy.target is Target.SWITCH:
            return (ResourceType.SWITCH, target) in self._open
        if policy.target is Target.INSTANCE:
            return (ResourceType.INSTANCE, key.split("/", 1)[1]) in self._open
        if policy.critical:
            return (ResourceType.HOST, target) in self._open
        return key in self._aggregator.times(target)

    def _forget_reapplied(self, target: str, event: FaultEvent) -> None:
        """Once a suppressed failure is applied after maintenance (after a crash, from the
        journal), the host's suppressed set has been taken: it is dropped."""
        suppressed = self._memory.suppressed(target)
        if any(derived_event_id(e.id, AFTER_MAINTENANCE) == event.id for e in suppressed.values()):
            self._memory.drop_suppressed(target)

    def _act(self, event: FaultEvent, uow: UnitOfWork, now: datetime) -> None:
        """Apply an event: a switch's or a host's recovery, failure or one more non-critical failure."""
        family, direction = split_type(event.type, event.status)
        policy = self.policies[family]
        if policy.target is Target.SWITCH:
            if direction is EventStatus.DOWN:
                self._switch_down(event, uow, now)
            else:
                self._clear(event, ResourceType.SWITCH, uow, now)
            return
        if policy.target is Target.INSTANCE:
            if direction is EventStatus.DOWN:
                self._instance_down(event, uow, now)
            else:
                self._clear(event, ResourceType.INSTANCE, uow, now, resource_id=event.related_to)
            return
        host = self._controller.map.host(event.hostname)
        if direction is EventStatus.UP:
            self._host_up(event, family, policy, host, uow, now)
        elif policy.critical:
            self._host_down(event, host, uow, now)
        else:
            self._aggregate(event, family, policy, host, uow, now)

    def _publish(self, changes: Sequence[AlarmChange], fault: Fault | None, uow: UnitOfWork) -> None:
        self._started.extend(self._publisher.publish(changes, fault, uow))

    # -- failures ------------------------------------------------------------

    def _new_fault(self, event: FaultEvent, resource_type: ResourceType, resource_id: str, now: datetime) -> Fault:
        fault = Fault(
            id=fault_id(event.id),
            type=event.type,
            resource_type=resource_type,
            resource_id=resource_id,
            severity=Severity.CRITICAL,
            state=FaultState.ACTIVE,
            opened_at=now,
            events=[event.id],
        )
        if event.injected_at is not None:
            fault.mark(Checkpoint.T00, event.injected_at)
        fault.mark(Checkpoint.T01, event.time.timestamp())
        self._faults[fault.id] = fault
        self._open[(resource_type, resource_id)] = fault
        event.fault = fault.id
        return fault

    def _correlated(self, event: FaultEvent, resource_type: ResourceType, resource_id: str, uow: UnitOfWork) -> bool:
        """Attach a repeated failure report to the fault already open on the resource."""
        existing = self._open.get((resource_type, resource_id))
        if existing is None:
            return False
        existing.events.append(event.id)
        event.fault = existing.id
        event.outcome = Outcome.CORRELATED
        uow.record(existing)
        return True

    def _host_down(self, event: FaultEvent, host: Host, uow: UnitOfWork, now: datetime) -> None:
        if self._correlated(event, ResourceType.HOST, host.name, uow):
            return
        fault = self._new_fault(event, ResourceType.HOST, host.name, now)
        self._fail(fault, event, [host], uow, now, forced_down=True)
        event.outcome = Outcome.FAULT_OPENED

    def _instance_down(self, event: FaultEvent, uow: UnitOfWork, now: datetime) -> None:
        """One instance failed on a host that is fine (its workload died): it alone goes ERROR, and only its owner
        is told, with no physical detail; its server group is re-evaluated."""
        ident = event.related_to or ""
        if self._correlated(event, ResourceType.INSTANCE, ident, uow):
            return
        rmap = self._controller.map
        inst = rmap.instance(ident)
        fault = self._new_fault(event, ResourceType.INSTANCE, ident, now)
        fault.mark(Checkpoint.T02, self._wall())
        if inst.state is not InstanceState.ERROR:
            uow.update(inst, state=InstanceState.ERROR)
        fault.mark(Checkpoint.T03, self._wall())
        fault.instances = [inst.id]
        host = rmap.host(inst.host) if inst.host else None
        changes = [
            self._alarms.raise_alarm(
                cause=fault.id,
                kind=AlarmKind.INSTANCE_DOWN,
                project=inst.project,
                resource_type=ResourceType.INSTANCE,
                resource_id=inst.project,
                severity=Severity.CRITICAL,
                fault=fault.id,
                reason=INSTANCE_DESCRIPTION,
                now=now,
                resource_ids=[inst.id],
                details={
                    "description": INSTANCE_DESCRIPTION,
                    "host_status": host.status.value if host else "UNKNOWN",
                    "host_ids": [opaque_host_id(inst.project, host.name)] if host else [],
                    "instance_state": InstanceState.ERROR.value,
                },
            )
        ]
        if inst.group is not None:
            group_change = self._evaluate_group(inst.group, fault.id, now)
            if group_change is not None:
                changes.append(group_change)
        for change in changes:
            uow.record(change.alarm)
        self._publish(changes, fault, uow)
        uow.record(fault)
        event.outcome = Outcome.FAULT_OPENED

    def _switch_down(self, event: FaultEvent, uow: UnitOfWork, now: datetime) -> None:
        if self._correlated(event, ResourceType.SWITCH, event.hostname, uow):
            return
        hosts = [
            h
            for h in self._controller.map.hosts_behind(event.hostname)
            if not h.in_maintenance and (ResourceType.HOST, h.name) not in self._open
        ]
        fault = self._new_fault(event, ResourceType.SWITCH, event.hostname, now)
        self._fail(fault, event, hosts, uow, now, forced_down=False)
        event.outcome = Outcome.FAULT_OPENED

    def _fail(
        self, fault: Fault, event: FaultEvent, hosts: list[Host], uow: UnitOfWork, now: datetime, *, forced_down: bool
    ) -> None:
        """Correlate, act, raise and publish: the fault's whole hot path."""
        impact = fault_actions.affected(uow, hosts)
        fault.mark(Checkpoint.T02, self._wall())
        reason = f"{event.type} from {event.monitor}"
        fault_actions.fail_hosts(
            uow,
            hosts,
            impact,
            forced_down=forced_down,
            reason=reason,
            stamp=lambda checkpoint: fault.mark(checkpoint, self._wall()),
        )
        fault.hosts = list(impact.hosts)
        fault.instances = list(impact.instances)
        changes: list[AlarmChange] = []
        for host in hosts:
            degraded = self._alarms.active(AlarmKind.HOST_DEGRADED, host.name)
            if degraded is not None:
                changes.append(self._alarms.clear(degraded, now))
        admin_details: dict[str, Any] = {
            "event_type": event.type,
            "monitor": event.monitor,
            "monitor_event_id": event.monitor_event_id,
            "cause": event.cause,
            "hosts": list(impact.hosts),
            "host_status": [self._controller.map.host(h).status.value for h in impact.hosts],
            **({"severity": event.severity} if event.severity else {}),  # the monitor's own (Zabbix's HIGH)
            **({"alarm": dict(event.alarm)} if event.alarm else {}),
        }
        if fault.resource_type is ResourceType.SWITCH:
            kind, resource_ids, what = AlarmKind.SWITCH_DOWN, list(impact.hosts), f"switch {fault.resource_id} down"
        else:
            kind, resource_ids, what = AlarmKind.HOST_DOWN, list(impact.instances), f"host {fault.resource_id} down"
        changes.append(
            self._alarms.raise_alarm(
                cause=fault.id,
                kind=kind,
                project=None,
                resource_type=fault.resource_type,
                resource_id=fault.resource_id,
                severity=Severity.CRITICAL,
                fault=fault.id,
                reason=f"{what}: {reason}",
                now=now,
                resource_ids=resource_ids,
                details=admin_details,
            )
        )
        host_of = {i: self._controller.map.instance(i).host or "" for i in impact.instances}
        status_of = {h: self._controller.map.host(h).status.value for h in impact.hosts}
        for project, instances in impact.by_project.items():
            their_hosts = {host_of[i] for i in instances}
            statuses = sorted({status_of[h] for h in their_hosts if h in status_of})
            changes.append(
                self._alarms.raise_alarm(
                    cause=fault.id,
                    kind=AlarmKind.INSTANCE_DOWN,
                    project=project,
                    resource_type=ResourceType.INSTANCE,
                    resource_id=project,
                    severity=Severity.CRITICAL,
                    fault=fault.id,
                    reason=TENANT_DESCRIPTION,
                    now=now,
                    resource_ids=list(instances),
                    details={
                        "description": TENANT_DESCRIPTION,
                        "host_status": statuses[0] if len(statuses) == 1 else statuses,
                        "host_ids": sorted(opaque_host_id(project, h) for h in their_hosts),
                        "instance_state": InstanceState.ERROR.value,
                    },
                )
            )
        for group in impact.groups:
            change = self._evaluate_group(group, fault.id, now)
            if change is not None:
                changes.append(change)
        for change in changes:
            uow.record(change.alarm)
        self._publish(changes, fault, uow)
        uow.record(fault)

    def _evaluate_group(self, group_id: str, fault: FaultId, now: datetime) -> AlarmChange | None:
        """Raise, update or clear a group's alarm from how many of its members are down."""
        rmap = self._controller.map
        try:
            group = rmap.group(group_id)
        except NotFound:
            return None
        down: list[str] = [m.id for m in rmap.members(group.id) if m.state is InstanceState.ERROR]
        active = self._alarms.active(AlarmKind.GROUP_DEGRADED, group.id, group.project)
        if len(down) >= group.alarm_threshold:
            if active is not None:
                return self._alarms.update(active, now, resource_ids=down)
            return self._alarms.raise_alarm(
                cause=fault,
                kind=AlarmKind.GROUP_DEGRADED,
                project=group.project,
                resource_type=ResourceType.SERVER_GROUP,
                resource_id=group.id,
                severity=Severity.MAJOR,
                fault=fault,
                reason=f"{len(down)} of {len(rmap.members(group.id))} members of server group {group.name} are down",
                now=now,
                resource_ids=down,
                details={"threshold": group.alarm_threshold, "members": len(rmap.members(group.id))},
            )
        if active is not None:
            return self._alarms.clear(active, now)
        return None

    def _aggregate(
        self, event: FaultEvent, family: str, policy: FaultPolicy, host: Host, uow: UnitOfWork, now: datetime
    ) -> None:
        """A non-critical failure: count it; at the threshold the host is down."""
        key = failure_key(event, family, policy)
        at = event.time.timestamp()
        self._aggregator.add(host.name, key, at)
        self._memory.changed(host.name)
        count = self._aggregator.count(host.name, at, policy.window_s)
        if (ResourceType.HOST, host.name) in self._open:
            event.outcome = Outcome.CORRELATED
            return
        if count >= policy.threshold:
            fault = self._new_fault(event, ResourceType.HOST, host.name, now)
            fault.type = "aggregated"
            self._fail(fault, event, [host], uow, now, forced_down=True)
            event.outcome = Outcome.FAULT_OPENED
            return
        self._warn_degraded(host, policy, count, event, uow, now)
        event.outcome = Outcome.AGGREGATED

    def _warn_degraded(
        self, host: Host, policy: FaultPolicy, count: int, event: FaultEvent, uow: UnitOfWork, now: datetime
    ) -> None:
        """Raise the host's one ``host.degraded`` warning, or bring it up to date, naming
        every failure still down (also in ``resource_ids``, from the raise on, so an
        update bumps the version only when that list really changes: a repeated
        report notifies no one). Called on a failure below the threshold and on a
        recovery that leaves failures behind, so admins never lose sight of them."""
        failures = self._aggregator.keys(host.name)
        reason = f"host {host.name} degraded: {', '.join(failures)} ({count} of {policy.threshold} failures)"
        active = self._alarms.active(AlarmKind.HOST_DEGRADED, host.name)
        # Each failure still down, as its monitor reported it (what rule templates match it by).
        reported: dict[str, Any] = dict(active.details.get("events", {})) if active is not None else {}
        family, direction = split_type(event.type, event.status)
        if direction is EventStatus.DOWN:
            reported[failure_key(event, family, policy)] = {
                "event_type": event.type,
                "monitor": event.monitor,
                **({"severity": event.severity} if event.severity else {}),
                **({"cause": event.cause} if event.cause else {}),
                **({"alarm": dict(event.alarm)} if event.alarm else {}),
            }
        reported = {k: v for k, v in reported.items() if k in failures}
        if active is None:
            pseudo = FaultId(f"degraded:{host.name}")
            change: AlarmChange | None = self._alarms.raise_alarm(
                cause=event.id,
                kind=AlarmKind.HOST_DEGRADED,
                project=None,
                resource_type=ResourceType.HOST,
                resource_id=host.name,
                severity=Severity.WARNING,
                fault=pseudo,
                reason=reason,
                now=now,
                resource_ids=failures,
                details={
                    "failures": failures,
                    "threshold": policy.threshold,
                    "monitor": event.monitor,
                    "events": reported,
                },
            )
        else:
            active.reason = reason
            active.details["failures"] = failures
            active.details["events"] = reported
            change = self._alarms.update(active, now, resource_ids=failures)
        if change is not None:
            uow.record(change.alarm)
            self._publish([change], None, uow)

    # -- recoveries ----------------------------------------------------------

    def _host_up(
        self, event: FaultEvent, family: str, policy: FaultPolicy, host: Host, uow: UnitOfWork, now: datetime
    ) -> None:
        if policy.critical:
            if self._aggregator.keys(host.name):
                self._aggregator.reset(host.name)
                self._memory.changed(host.name)
            self._clear_degraded(host.name, uow, now)
            self._clear(event, ResourceType.HOST, uow, now)
            return
        self._aggregator.remove(host.name, failure_key(event, family, policy))
        self._memory.changed(host.name)
        fault = self._open.get((ResourceType.HOST, host.name))
        remaining = self._aggregator.count(host.name, event.time.timestamp(), float("inf"))
        if fault is not None and fault.type == "aggregated" and remaining < policy.threshold:
            self._clear(event, ResourceType.HOST, uow, now)
            fault = None
        if remaining == 0:
            self._clear_degraded(host.name, uow, now)
        elif fault is None:
            # The host is up with failures left below the threshold: the fault
            # just cleared had replaced their warning, so raise it again (or,
            # with no fault, drop the recovered failure from the one raised).
            self._warn_degraded(host, policy, remaining, event, uow, now)
        if event.outcome is Outcome.ACCEPTED:
            event.outcome = Outcome.RECOVERED

    def _clear_degraded(self, host: str, uow: UnitOfWork, now: datetime) -> None:
        active = self._alarms.active(AlarmKind.HOST_DEGRADED, host)
        if active is not None:
            change = self._alarms.clear(active, now)
            uow.record(change.alarm)
            self._publish([change], None, uow)

    def _clear(
        self,
        event: FaultEvent,
        resource_type: ResourceType,
        uow: UnitOfWork,
        now: datetime,
        *,
        resource_id: str | None = None,
    ) -> None:
        fault = self._open.pop((resource_type, resource_id or event.hostname), None)
        if fault is None:
            event.outcome = Outcome.NO_ACTIVE_FAULT
            return
        fault.state = FaultState.CLEARED
        fault.cleared_at = now
        fault.events.append(event.id)
        self._forget(fault)
        event.fault = fault.id
        rmap = self._controller.map
        own_fault = fault.resource_type == ResourceType.HOST
        # A host behind a recovered switch that has meanwhile failed on its own stays down.
        hosts = [rmap.host(h) for h in fault.hosts if own_fault or (ResourceType.HOST, h) not in self._open]
        fault_actions.recover_hosts(uow, hosts, forced_down=own_fault)
        changes = [
            self._alarms.clear(a, now)
            for a in self._alarms.of_fault(fault.id)
            if a.active and a.kind is not AlarmKind.GROUP_DEGRADED
        ]
        for change in changes:
            uow.record(change.alarm)
        self._publish(changes, None, uow)
        uow.record(fault)
        event.outcome = Outcome.FAULT_CLEARED

    def _forget(self, fault: Fault) -> None:
        """A cleared fault leaves memory, but for the last ``RECENT_FAULTS`` (its profile is still
        being completed by its deliveries; the store keeps it all)."""
        self._faults.pop(fault.id, None)
        self._recent[fault.id] = fault
        if len(self._recent) > RECENT_FAULTS:
            self._recent.popitem(last=False)

    # -- virtual to virtual: server groups recover with their members ----------

    async def reevaluate_groups(self, now: datetime) -> None:
        """Re-evaluate degraded server groups after instances changed (Vitrage's do/undo):
        an instance leaving ERROR or deleted may end a group's degradation. Not a
        journaled report: its notifications leave once the change is durable."""
        uow = self._controller.begin("server group re-evaluated", now=now)
        changes: list[AlarmChange] = []
        rmap = self._controller.map
        for group in rmap.groups():
            alarm = self._alarms.active(AlarmKind.GROUP_DEGRADED, group.id, group.project)
            if alarm is None:
                continue
            change = self._evaluate_group(group.id, alarm.fault, now)
            if change is not None:
                changes.append(change)
                uow.record(change.alarm)
        if changes:
            deliveries = self._publisher.publish(changes, None, uow, start=False)
            await self._controller.commit(uow)
            self._publisher.deliver(deliveries, None)
