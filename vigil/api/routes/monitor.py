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
    lateness_ms: float
    reason: str


class MonitoredHostOut(BaseModel):
    name: str
    state: HostState
    last_seen: datetime | None
    last_seq: int | None
    interval_ms: float
    detect_mult: int
    detect_ms: float
    deadline: datetime | None
    received: int
    lost: int
    late: int
    max_gap_ms: float = Field(description="The longest time between two heartbeats taken, as Vigil saw them.")
    transitions: int
    stalls: int = Field(description="Deadlines checked over a detection time late (Vigil itself stalled): grace given.")
    recovering_since: datetime | None = Field(description="Start of the hold-down of a DOWN host heard again.")
    last_transition: TransitionOut | None


class MonitorOut(BaseModel):
    enabled: bool
    listen: str | None
    hold_down_s: float | None
    datagrams: int
    bad: int
    last_bad: str | None
    unknown_host: int
    unknown_hosts: list[str]
    reported: int
    report_failures: int
    mass_silences: int = Field(description="Deadlines deferred because most hosts fell silent at once.")


class MonitorHostsOut(BaseModel):
    monitor: MonitorOut
    hosts: list[MonitoredHostOut]


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
    monitor = ctx.faults.monitor
    hosts: list[MonitoredHostOut] = []
    if monitor is not None:
        sessions = sorted(monitor.sessions.values(), key=lambda s: s.host)
        hosts = [_host(monitor, s) for s in sessions if state is None or s.state is state]
    return MonitorHostsOut(monitor=_summary(monitor), hosts=hosts)


@router.get("/hosts/{name}", summary="Heartbeat state of one host")
async def show_monitored(ctx: Context, _: Admin, name: str) -> dict[str, MonitoredHostOut]:
    ctx.cloud.map.host(name)  # 404 for a host Vigil does not know
    monitor = ctx.faults.monitor
    if monitor is None:
        raise HTTPException(404, "the heartbeat monitor is disabled (monitor.listen: off)")
    session = monitor.sessions.get(name) or Session(name, monitor.timing)  # never heard from: INIT
    return {"host": _host(monitor, session)}
