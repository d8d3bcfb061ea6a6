"""The inspector: one southbound event in, consistent states and alarms out.

:meth:`Inspector.receive` takes a list of events (Doctor's ``PUT /events``)
and handles them in one unit of work of the controller:

1. Every event names a known host (or switch) or the whole list is refused:
   the events are recorded as ``unknown_host`` / ``not_applied`` and
   :class:`UnknownResource` is raised, so nothing is half applied.
2. A repeat of (monitor, monitor_event_id) is recorded as ``duplicate``.
3. An event on a host in maintenance is recorded as ``suppressed``; the
   latest one of each failure is kept, and when the host leaves
   maintenance a failure whose latest word was "down" is applied then
   (:meth:`Inspector.watch`): a host the upgrade broke is not re-enabled
   silently, although its monitor reported it only once, in maintenance.
4. A failure opens a :class:`~vigil.domain.faults.Fault`: the affected
   instances and ports are found (T02), set to ERROR and DOWN (T03), the
   host marked down (T04); one admin alarm, one alarm per affected project
   and the degraded server groups' alarms are raised and published at once.
   A non-critical failure counts toward its host's aggregation threshold,
   raising a warning until it is reached.
5. A recovery clears the fault: the host comes back up and its alarms
   clear. Instances stay ERROR until their owner acts; a server group's
   alarm clears when its members recover (:meth:`Inspector.watch`).
   An aggregated fault clears once its failures fall below the threshold;
   those still down are warned of again until they recover too.

The whole unit of work is committed before ``receive`` returns, so an
accepted event is durable; the notifications went out before the commit.
"""

import gc
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vigil.domain.alarms import AlarmChange, AlarmKind
from vigil.domain.deliveries import Delivery
from vigil.domain.errors import DomainError, NotFound
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.faults import (
    Checkpoint,
    EventStatus,
    Fault,
    FaultEvent,
    FaultId,
    FaultState,
    Severity,
)
from vigil.domain.model import Host, ResourceType
from vigil.domain.states import InstanceState
from vigil.inspector.aggregation import Aggregator
from vigil.inspector.policy import DEFAULT_POLICIES, FaultPolicy, Target, split_type
from vigil.inspector.ports import Alarms, Controller, Publisher

log = logging.getLogger(__name__)

TENANT_DESCRIPTION = "host failure affecting your instances"
DEDUP_MEMORY = 100_000
# How long a fault's commit waits for its notifications' first attempts.
SETTLE_S = 0.25


class UnknownResource(DomainError):
    """An event named a host or switch Vigil does not know; nothing was applied."""


def _new_id() -> str:
    return str(uuid.uuid4())


def opaque_host_id(project: str, host: str) -> str:
    """Nova's ``hostId``: tells a tenant whether two instances share a host, not which host."""
    return hashlib.sha224(f"{project}{host}".encode()).hexdigest()


class Inspector:
    def __init__(
        self,
        controller: Controller,
        alarms: Alarms,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime],
        wall: Callable[[], float] = time.time,
        policies: Mapping[str, FaultPolicy] = DEFAULT_POLICIES,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._controller = controller
        self._alarms = alarms
        self._publisher = publisher
        self._clock = clock
        self._wall = wall
        self.policies = dict(policies)
        self._new_id = new_id
        self._aggregator = Aggregator()
        self._faults: dict[FaultId, Fault] = {}
        self._open: dict[tuple[str, str], Fault] = {}  # (resource type, id) → active fault
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._started: list[Delivery] = []  # deliveries started by the events being handled
        # host → (family, related_to) → the latest event suppressed while it was in maintenance
        self._suppressed: dict[str, dict[tuple[str, str | None], FaultEvent]] = {}

    # -- state -------------------------------------------------------------

    def load(self, faults: Sequence[Fault], events: Sequence[FaultEvent]) -> None:
        """Restore faults and the dedup memory after a restart."""
        for fault in faults:
            self._faults[fault.id] = fault
            if fault.state is FaultState.ACTIVE:
                self._open[(fault.resource_type, fault.resource_id)] = fault
        for event in events[-DEDUP_MEMORY:]:
            self._remember(event)

    def fault(self, ident: str) -> Fault:
        try:
            return self._faults[FaultId(ident)]
        except KeyError:
            raise NotFound("fault", ident) from None

    def faults(self, state: FaultState | None = None) -> list[Fault]:
        return [f for f in self._faults.values() if state is None or f.state is state]

    @property
    def faults_by_id(self) -> dict[str, Fault]:
        return {str(k): v for k, v in self._faults.items()}

    # -- the southbound entry ------------------------------------------------

    async def receive(self, events: Sequence[FaultEvent]) -> list[FaultEvent]:
        uow = self._controller.begin("fault event")
        unknown = [e for e in events if not self._known(e)]
        if unknown:
            for event in events:
                event.outcome = "unknown_host" if event in unknown else "not_applied"
                uow.record(event)
            await self._controller.commit(uow)
            names = ", ".join(sorted({e.hostname for e in unknown}))
            ids = ", ".join(e.id for e in unknown)
            raise UnknownResource(
                f"unknown host or switch: {names}; no event of this request was applied (recorded as {ids})"
            )
        await self._apply(events, uow, self._handle)
        return list(events)

    async def _apply(self, events: Sequence[FaultEvent], uow: Any, handle: Callable[[FaultEvent, Any], None]) -> None:
        """Handle the events in ``uow``, let their notifications go first, then commit."""
        # No garbage collection from here until the requests are on the wire: a
        # rack failure allocates thousands of snapshots, and a full collection
        # landing in the middle (tens of ms) would hold every notification back.
        collecting = gc.isenabled()
        gc.disable()
        self._started = []
        try:
            for event in events:
                handle(event, uow)
                uow.record(event)
            # The notifications go first: the commit waits until their first
            # attempts have ended (bounded). The commit's own work (rows for every
            # instance changed) would otherwise run ahead of them on the event
            # loop and hold them back (tens of ms in a rack failure).
            started, self._started = self._started, []
            await self._publisher.settle(started, SETTLE_S)
        finally:
            if collecting:
                gc.enable()
        # Outcomes saved while we waited are older in the commit order than this
        # unit of work: record the deliveries and faults again as they are now,
        # so the commit does not put back the PENDING rows recorded at publish.
        for delivery in started:
            uow.record(delivery)
        for ident in {d.fault for d in started if d.fault is not None}:
            fault = self._faults.get(ident)
            if fault is not None:
                uow.record(fault)
        await self._controller.commit(uow)

    def _known(self, event: FaultEvent) -> bool:
        family, _ = split_type(event.type, event.status)
        policy = self.policies.get(family, FaultPolicy())
        try:
            if policy.target is Target.SWITCH:
                self._controller.map.switch(event.hostname)
            else:
                self._controller.map.host(event.hostname)
        except NotFound:
            return False
        return True

    def _remember(self, event: FaultEvent) -> bool:
        """False if this (monitor, monitor_event_id) was seen before."""
        if event.dedup_key in self._seen:
            return False
        self._seen[event.dedup_key] = None
        if len(self._seen) > DEDUP_MEMORY:
            self._seen.popitem(last=False)
        return True

    def _handle(self, event: FaultEvent, uow: Any) -> None:
        if not self._remember(event):
            event.outcome = "duplicate"
            return
        family, direction = split_type(event.type, event.status)
        policy = self.policies[family]
        if policy.target is Target.SWITCH:
            if direction is EventStatus.DOWN:
                self._switch_down(event, uow)
            else:
                self._clear(event, ResourceType.SWITCH, uow)
            return
        host = self._controller.map.host(event.hostname)
        if host.in_maintenance:
            event.outcome = "suppressed"
            self._suppressed.setdefault(host.name, {})[(family, event.related_to)] = event
            return
        self._act(event, uow)

    def _act(self, event: FaultEvent, uow: Any) -> None:
        """Apply a host's event: its recovery, failure or one more non-critical failure."""
        family, direction = split_type(event.type, event.status)
        policy = self.policies[family]
        host = self._controller.map.host(event.hostname)
        if direction is EventStatus.UP:
            self._host_up(event, family, policy, host, uow)
        elif policy.critical:
            self._host_down(event, host, uow)
        else:
            self._aggregate(event, family, policy, host, uow)

    def _publish(self, changes: Sequence[AlarmChange], fault: Fault | None, uow: Any) -> None:
        self._started.extend(self._publisher.publish(changes, fault, uow))

    # -- failures ------------------------------------------------------------

    def _new_fault(self, event: FaultEvent, resource_type: ResourceType, resource_id: str) -> Fault:
        fault = Fault(
            id=FaultId(self._new_id()),
            type=event.type,
            resource_type=resource_type,
            resource_id=resource_id,
            severity=Severity.CRITICAL,
            state=FaultState.ACTIVE,
            opened_at=self._clock(),
            events=[event.id],
        )
        if event.injected_at is not None:
            fault.mark(Checkpoint.T00, event.injected_at)
        fault.mark(Checkpoint.T01, event.time.timestamp())
        self._faults[fault.id] = fault
        self._open[(resource_type, resource_id)] = fault
        event.fault = fault.id
        return fault

    def _correlated(self, event: FaultEvent, resource_type: ResourceType, resource_id: str, uow: Any) -> bool:
        """Attach a repeated failure report to the fault already open on the resource."""
        existing = self._open.get((resource_type, resource_id))
        if existing is None:
            return False
        existing.events.append(event.id)
        event.fault = existing.id
        event.outcome = "correlated"
        uow.record(existing)
        return True

    def _host_down(self, event: FaultEvent, host: Host, uow: Any) -> None:
        if self._correlated(event, ResourceType.HOST, host.name, uow):
            return
        fault = self._new_fault(event, ResourceType.HOST, host.name)
        self._fail(fault, event, [host], uow, forced_down=True)
        event.outcome = "fault_opened"

    def _switch_down(self, event: FaultEvent, uow: Any) -> None:
        if self._correlated(event, ResourceType.SWITCH, event.hostname, uow):
            return
        hosts = [
            h
            for h in self._controller.map.hosts_behind(event.hostname)
            if not h.in_maintenance and (ResourceType.HOST, h.name) not in self._open
        ]
        fault = self._new_fault(event, ResourceType.SWITCH, event.hostname)
        self._fail(fault, event, hosts, uow, forced_down=False)
        event.outcome = "fault_opened"

    def _fail(self, fault: Fault, event: FaultEvent, hosts: list[Host], uow: Any, *, forced_down: bool) -> None:
        """Correlate, act, raise and publish: the fault's whole hot path."""
        now = self._clock()
        impact = self._controller.affected(uow, hosts)
        fault.mark(Checkpoint.T02, self._wall())
        reason = f"{event.type} from {event.monitor}"
        self._controller.fail_hosts(
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
        }
        if fault.resource_type is ResourceType.SWITCH:
            kind, resource_ids, what = AlarmKind.SWITCH_DOWN, list(impact.hosts), f"switch {fault.resource_id} down"
        else:
            kind, resource_ids, what = AlarmKind.HOST_DOWN, list(impact.instances), f"host {fault.resource_id} down"
        changes.append(
            self._alarms.raise_alarm(
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

    def _aggregate(self, event: FaultEvent, family: str, policy: FaultPolicy, host: Host, uow: Any) -> None:
        """A non-critical failure: count it; at the threshold the host is down."""
        key = f"{family}/{event.related_to or event.cause or event.monitor_event_id}"
        at = event.time.timestamp()
        self._aggregator.add(host.name, key, at)
        count = self._aggregator.count(host.name, at, policy.window_s)
        if (ResourceType.HOST, host.name) in self._open:
            event.outcome = "correlated"
            return
        if count >= policy.threshold:
            fault = self._new_fault(event, ResourceType.HOST, host.name)
            fault.type = "aggregated"
            self._fail(fault, event, [host], uow, forced_down=True)
            event.outcome = "fault_opened"
            return
        self._warn_degraded(host, policy, count, event.monitor, uow)
        event.outcome = "aggregated"

    def _warn_degraded(self, host: Host, policy: FaultPolicy, count: int, monitor: str, uow: Any) -> None:
        """Raise the host's one ``host.degraded`` warning, or bring it up to date, naming
        every failure still down (also in ``resource_ids``, from the raise on, so an
        update bumps the version only when that list really changes: a repeated
        report notifies no one). Called on a failure below the threshold and on a
        recovery that leaves failures behind, so admins never lose sight of them."""
        now = self._clock()
        failures = self._aggregator.keys(host.name)
        reason = f"host {host.name} degraded: {', '.join(failures)} ({count} of {policy.threshold} failures)"
        active = self._alarms.active(AlarmKind.HOST_DEGRADED, host.name)
        if active is None:
            pseudo = FaultId(f"degraded:{host.name}")
            change: AlarmChange | None = self._alarms.raise_alarm(
                kind=AlarmKind.HOST_DEGRADED,
                project=None,
                resource_type=ResourceType.HOST,
                resource_id=host.name,
                severity=Severity.WARNING,
                fault=pseudo,
                reason=reason,
                now=now,
                resource_ids=failures,
                details={"failures": failures, "threshold": policy.threshold, "monitor": monitor},
            )
        else:
            active.reason = reason
            active.details["failures"] = failures
            change = self._alarms.update(active, now, resource_ids=failures)
        if change is not None:
            uow.record(change.alarm)
            self._publish([change], None, uow)

    # -- recoveries ----------------------------------------------------------

    def _host_up(self, event: FaultEvent, family: str, policy: FaultPolicy, host: Host, uow: Any) -> None:
        if policy.critical:
            self._aggregator.reset(host.name)
            self._clear_degraded(host.name, uow)
            self._clear(event, ResourceType.HOST, uow)
            return
        key = f"{family}/{event.related_to or event.cause or event.monitor_event_id}"
        self._aggregator.remove(host.name, key)
        fault = self._open.get((ResourceType.HOST, host.name))
        remaining = self._aggregator.count(host.name, event.time.timestamp(), float("inf"))
        if fault is not None and fault.type == "aggregated" and remaining < policy.threshold:
            self._clear(event, ResourceType.HOST, uow)
            fault = None
        if remaining == 0:
            self._clear_degraded(host.name, uow)
        elif fault is None:
            # The host is up with failures left below the threshold: the fault
            # just cleared had replaced their warning, so raise it again (or,
            # with no fault, drop the recovered failure from the one raised).
            self._warn_degraded(host, policy, remaining, event.monitor, uow)
        if event.outcome == "pending":
            event.outcome = "recovered"

    def _clear_degraded(self, host: str, uow: Any) -> None:
        active = self._alarms.active(AlarmKind.HOST_DEGRADED, host)
        if active is not None:
            change = self._alarms.clear(active, self._clock())
            uow.record(change.alarm)
            self._publish([change], None, uow)

    def _clear(self, event: FaultEvent, resource_type: ResourceType, uow: Any) -> None:
        fault = self._open.pop((resource_type, event.hostname), None)
        if fault is None:
            event.outcome = "no_active_fault"
            return
        now = self._clock()
        fault.state = FaultState.CLEARED
        fault.cleared_at = now
        fault.events.append(event.id)
        event.fault = fault.id
        rmap = self._controller.map
        own_fault = fault.resource_type == ResourceType.HOST
        # A host behind a recovered switch that has meanwhile failed on its own stays down.
        hosts = [rmap.host(h) for h in fault.hosts if own_fault or (ResourceType.HOST, h) not in self._open]
        self._controller.recover_hosts(uow, hosts, forced_down=own_fault)
        changes = [
            self._alarms.clear(a, now)
            for a in self._alarms.of_fault(fault.id)
            if a.active and a.kind is not AlarmKind.GROUP_DEGRADED
        ]
        for change in changes:
            uow.record(change.alarm)
        self._publish(changes, None, uow)
        uow.record(fault)
        event.outcome = "fault_cleared"

    # -- virtual to virtual: server groups recover with their members ----------

    async def watch(self, events: AsyncIterable[ResourceEvent]) -> None:
        """Re-evaluate degraded server groups as instances change (Vitrage's do/undo):
        an instance leaving ERROR or deleted may end a group's degradation. A
        host leaving maintenance gets the failures suppressed meanwhile applied."""
        async for event in events:
            if event.resource_type is ResourceType.HOST:
                if event.changes.get("in_maintenance", (None, None)) == (True, False):
                    try:
                        await self._after_maintenance(event.resource_id)
                    except Exception:  # one bad replay must not stop the watcher
                        log.exception("applying what was suppressed on %s failed", event.resource_id)
                continue
            if event.resource_type is not ResourceType.INSTANCE:
                continue
            leaving_error = event.changes.get("state", (None, None))[0] == InstanceState.ERROR
            if not (leaving_error or event.action is EventAction.DELETED):
                continue
            try:
                await self._reevaluate_groups()
            except Exception:  # one bad evaluation must not stop the watcher
                log.exception("re-evaluating server groups after %s failed", event.event_type)

    async def _after_maintenance(self, host: str) -> None:
        """Apply the failures still down that were suppressed while ``host`` was in maintenance."""
        latest = self._suppressed.pop(host, {})
        down = [e for e in latest.values() if split_type(e.type, e.status)[1] is EventStatus.DOWN]
        live = self._controller.map.host(host)
        if not down or live.in_maintenance:
            return
        for event in down:
            log.warning("%s left maintenance with %s still reported down: applying it now", host, event.type)
        uow = self._controller.begin("failure reported during maintenance")
        await self._apply(sorted(down, key=lambda e: e.received_at), uow, self._act)

    async def _reevaluate_groups(self) -> None:
        now = self._clock()
        uow = self._controller.begin("server group re-evaluated")
        changes: list[AlarmChange] = []
        rmap = self._controller.map
        for group in list(self._degraded_groups()):
            alarm = self._alarms.active(AlarmKind.GROUP_DEGRADED, group, rmap.group(group).project)
            if alarm is None:
                continue
            change = self._evaluate_group(group, alarm.fault, now)
            if change is not None:
                changes.append(change)
                uow.record(change.alarm)
        if changes:
            self._publisher.publish(changes, None, uow)
            await self._controller.commit(uow)

    def _degraded_groups(self) -> list[str]:
        rmap = self._controller.map
        found: list[str] = []
        for group in rmap.groups():
            if self._alarms.active(AlarmKind.GROUP_DEGRADED, group.id, group.project) is not None:
                found.append(group.id)
        return found
