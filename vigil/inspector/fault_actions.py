"""Doctor's inspector actions on the resource map: take a failed host and
everything on it down, and bring the host back.

They are the inspector's (Doctor's "fault actions"), not a VIM's: they
change Vigil's own map inside the inspector's unit of work, so a fault's
resource changes, its fault record, its alarms and its outbox entries are
durable in one transaction, whichever VIM driver runs (a driver pushes the
same states to its VIM afterwards). Each change is applied to
the map at once: by the time a consumer is notified, a query already shows
the instance in ERROR and the host DOWN (Doctor's consistent resource state
awareness).

``stamp`` is called with T03 when the instances are in ERROR (and their
ports DOWN) and with T04 when the host is marked down, for the profiler.
"""

from collections.abc import Callable, Sequence

from vigil.domain.faults import Checkpoint, Impact
from vigil.domain.model import Host
from vigil.domain.states import AdminState, DataPlaneStatus, InstanceState
from vigil.inspector.ports import UnitOfWork

FAULT_REASON_PREFIX = "fault: "


def forced_down_by_fault(host: Host) -> bool:
    """Whether the inspector forced this host down for a fault (and not an admin or the VIM)."""
    return host.forced_down and (host.disabled_reason or "").startswith(FAULT_REASON_PREFIX)


def affected(changes: UnitOfWork, hosts: Sequence[Host]) -> Impact:
    """The instances and ports on ``hosts`` that a failure takes down (Doctor step 3)."""
    rmap = changes.map
    impact = Impact(hosts=[h.name for h in hosts])
    groups: dict[str, None] = {}
    for host in hosts:
        for inst in rmap.instances_on(host.name):
            if inst.state is InstanceState.DELETED:
                continue
            impact.instances.append(inst.id)
            impact.by_project.setdefault(inst.project, []).append(inst.id)
            if inst.group is not None:
                groups[inst.group] = None
            impact.ports.extend(p.id for p in rmap.ports_of(inst.id))
    impact.groups = list(groups)
    return impact


def fail_hosts(
    changes: UnitOfWork,
    hosts: Sequence[Host],
    impact: Impact,
    *,
    forced_down: bool,
    reason: str,
    stamp: Callable[[Checkpoint], None] = lambda _: None,
) -> None:
    """Set the impact's instances to ERROR and ports DOWN (T03), then mark the hosts
    down (T04): forced down and disabled when the host itself failed, or only
    unreachable (host_status UNKNOWN) when it was cut off, e.g. behind a failed switch."""
    rmap = changes.map
    for ident in impact.instances:
        changes.update(rmap.instance(ident), state=InstanceState.ERROR)
    for ident in impact.ports:
        changes.update(rmap.port(ident), data_plane_status=DataPlaneStatus.DOWN)
    stamp(Checkpoint.T03)
    for host in hosts:
        if forced_down:
            changes.update(
                host,
                forced_down=True,
                admin_state=AdminState.DISABLED,
                disabled_reason=f"{FAULT_REASON_PREFIX}{reason}",
            )
        else:
            changes.update(host, reachable=False)
    stamp(Checkpoint.T04)


def recover_hosts(changes: UnitOfWork, hosts: Sequence[Host], *, forced_down: bool) -> None:
    """Undo :func:`fail_hosts`: reachable again, and, for a host that itself
    failed (``forced_down``), no longer forced down and enabled again if a
    fault (not an admin) disabled it. Instances stay ERROR until their owner
    acts, as in Nova."""
    for host in hosts:
        fields: dict[str, object] = {"reachable": True}
        if forced_down:
            fields["forced_down"] = False
            if host.admin_state is AdminState.DISABLED and (host.disabled_reason or "").startswith(FAULT_REASON_PREFIX):
                fields.update(admin_state=AdminState.ENABLED, disabled_reason=None)
        changes.update(host, **fields)
