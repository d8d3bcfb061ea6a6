"""The heartbeat monitor's view: each host's detection state, admin only.

``GET /v1/monitor/hosts`` lists the hosts the monitor has heard from (or
assumed down after a restart) with their state (INIT, UP, DOWN), when the
last heartbeat came, the interval and multiplier in force, the counts of
received, lost and late heartbeats and the last transition; beside them the
listener's counters (datagrams, bad ones, unknown hosts). With the monitor
disabled (``monitor.listen: off``) the list is empty and ``enabled`` false.
"""

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from vigil.api.deps import Admin, Context
from vigil.monitor.monitor import HeartbeatMonitor
from vigil.monitor.session import HostState, Session

router = APIRouter(prefix="/monitor", tags=["monitor"])


class TransitionOut(BaseModel):
    old: HostState
    new: HostState
    at: datetime = Field(description="When it happened by the rules: for DOWN, the deadline that passed.")
    noticed: datetime = Field(description="When the monitor saw it.")
    lateness_ms: float = Field(description="How long after `at` the monitor noticed it.")
    reason: str = Field(description="Why it happened, e.g. `3 heartbeats missed` or `heartbeat resumed`.")


class MonitoredHostOut(BaseModel):
    name: str = Field(description="The host's name.")
    state: HostState = Field(description="INIT (not heard yet), UP, or DOWN.")
    last_seen: datetime | None = Field(description="When the last heartbeat came; null before the first.")
    last_seq: int | None = Field(description="The sequence number of the last heartbeat taken.")
    interval_ms: float = Field(description="The heartbeat interval the agent announced.")
    detect_mult: int = Field(description="How many intervals may pass without a heartbeat before the host is DOWN.")
    detect_ms: float = Field(description="The detection time: `interval_ms` times `detect_mult`.")
    deadline: datetime | None = Field(description="When the host is declared DOWN if nothing comes before.")
    received: int = Field(description="Heartbeats taken.")
    lost: int = Field(description="Heartbeats missing by their sequence numbers.")
    late: int = Field(description="Heartbeats that came after their deadline.")
    max_gap_ms: float = Field(description="The longest time between two heartbeats taken, as Vigil saw them.")
    transitions: int = Field(description="State changes since the monitor started.")
    stalls: int = Field(description="Deadlines checked over a detection time late (Vigil itself stalled): grace given.")
    recovering_since: datetime | None = Field(description="Start of the hold-down of a DOWN host heard again.")
    last_transition: TransitionOut | None = Field(description="The latest state change, if any.")


class MonitorOut(BaseModel):
    enabled: bool = Field(description="False where the monitor is off (`monitor.listen: off`).")
    listen: str | None = Field(description="The UDP address heartbeats are received on.")
    hold_down_s: float | None = Field(description="How long a DOWN host must be heard steadily before it is UP.")
    datagrams: int = Field(description="Datagrams received.")
    bad: int = Field(description="Datagrams refused: malformed, or failing their HMAC.")
    last_bad: str | None = Field(description="Why the latest bad datagram was refused.")
    unknown_host: int = Field(description="Datagrams from hosts Vigil does not know.")
    unknown_hosts: list[str] = Field(description="The names those datagrams carried (the first 100).")
    reported: int = Field(description="Transitions reported to the inspector.")
    report_failures: int = Field(description="Reports to the inspector that failed.")
    mass_silences: int = Field(description="Deadlines deferred because most hosts fell silent at once.")


class MonitorHostsOut(BaseModel):
    monitor: MonitorOut = Field(description="The listener's own state and counters.")
    hosts: list[MonitoredHostOut] = Field(description="Each host the monitor has heard from.")


def _when(monitor: HeartbeatMonitor, monotonic: float | None) -> datetime | None:
    wall = monitor.wall_of(monotonic)
    return None if wall is None else datetime.fromtimestamp(wall, UTC)


def _host(monitor: HeartbeatMonitor, session: Session) -> MonitoredHostOut:
    last = session.last_transition
    transition = None
    if last is not None:
        transition = TransitionOut(
            old=last.old,
            new=last.new,
            at=_when(monitor, last.at) or datetime.now(UTC),
            noticed=_when(monitor, last.noticed) or datetime.now(UTC),
            lateness_ms=round(last.lateness_s * 1000, 3),
            reason=last.reason,
        )
    return MonitoredHostOut(
        name=session.host,
        state=session.state,
        last_seen=_when(monitor, session.last_seen),
        last_seq=session.last_seq,
        interval_ms=session.interval_ms,
        detect_mult=session.mult,
        detect_ms=session.detect_s * 1000,
        deadline=_when(monitor, session.deadline),
        received=session.received,
        lost=session.lost,
        late=session.late,
        max_gap_ms=round(session.max_gap_s * 1000, 3),
        transitions=session.transitions,
        stalls=session.stalls,
        recovering_since=_when(monitor, session.recovering_since),
        last_transition=transition,
    )


def _summary(monitor: HeartbeatMonitor | None) -> MonitorOut:
    if monitor is None:
        return MonitorOut(
            enabled=False,
            listen=None,
            hold_down_s=None,
            datagrams=0,
            bad=0,
            last_bad=None,
            unknown_host=0,
            unknown_hosts=[],
            reported=0,
            report_failures=0,
            mass_silences=0,
        )
    c = monitor.counters
    return MonitorOut(
        enabled=True,
        listen=monitor.listening,
        hold_down_s=monitor.timing.hold_down_s,
        datagrams=c.datagrams,
        bad=c.bad,
        last_bad=c.last_bad,
        unknown_host=c.unknown_host,
        unknown_hosts=sorted(c.unknown_hosts),
        reported=c.reported,
        report_failures=c.report_failures,
        mass_silences=c.mass_silences,
    )


@router.get("/hosts", summary="Heartbeat state of every monitored host")
async def list_monitored(ctx: Context, _: Admin, state: HostState | None = None) -> MonitorHostsOut:
    """The heartbeat monitor's view of the hosts it has heard from (or assumed down after a restart): each one's
    state (INIT, UP or DOWN), last heartbeat, interval and detection multiplier in force, counts of received, lost
    and late heartbeats and its last transition, beside the listener's own counters.

    Admin only; filter by `state`. With the monitor disabled (`monitor.listen: off`) the list is empty and `enabled`
    is false."""
    monitor = ctx.faults.monitor
    hosts: list[MonitoredHostOut] = []
    if monitor is not None:
        sessions = sorted(monitor.sessions.values(), key=lambda s: s.host)
        hosts = [_host(monitor, s) for s in sessions if state is None or s.state is state]
    return MonitorHostsOut(monitor=_summary(monitor), hosts=hosts)


@router.get("/hosts/{name}", summary="Heartbeat state of one host")
async def show_monitored(ctx: Context, _: Admin, name: str) -> dict[str, MonitoredHostOut]:
    """The heartbeat state of one host. Admin only. A host Vigil knows but the monitor has not heard from is shown
    in state INIT; an unknown host is a 404, and so is every host while the monitor is disabled."""
    ctx.cloud.map.host(name)  # 404 for a host Vigil does not know
    monitor = ctx.faults.monitor
    if monitor is None:
        raise HTTPException(404, "the heartbeat monitor is disabled (monitor.listen: off)")
    session = monitor.sessions.get(name) or Session(name, monitor.timing)  # never heard from: INIT
    return {"host": _host(monitor, session)}
