"""The heartbeat monitor: datagrams in, ``compute.host.down``/``up`` to the inspector out.

:meth:`HeartbeatMonitor.receive` takes one datagram's bytes (the UDP
listener, :mod:`vigil.heartbeat`, reads the socket): it decodes it
(:mod:`vigil.domain.heartbeats`), counts bad datagrams and unknown hosts
and drops them (UDP has no error reply), starts a :class:`Session` at a
host's first heartbeat, and feeds the session.

Timers: one per host, armed at the host's deadline through the
:class:`Timers` port (the event loop's ``call_at``), so the cost is
proportional to heartbeats, not to hosts x time. A heartbeat does not
re-arm the timer: it only moves the deadline; when the timer fires ahead of
the moved deadline it is armed again for it (about one timer per detection
time per host, instead of a cancel and a new timer per heartbeat). Before a
firing timer declares a host lost, the monitor *drains* the listener
(``drain`` port): a heartbeat waiting in the socket buffer while Vigil's
loop was busy must not turn into a false alarm.

Mass silence: when more than ``mass_fraction`` of the hosts that are UP
(at least ``mass_min_hosts`` of them) are past their deadlines at once, the
fault is far likelier on the monitoring side (Vigil's machine stalled, its
management network or switch failed) than in that many hosts together, so
no host is declared lost: each gets one more detection time, again and
again while the silence lasts (Kubernetes' node controller stops evicting
in a fully disrupted zone for the same reason). When heartbeats come back,
the hosts still silent a hold-down after the silence ended (senders catch
up unevenly after a stall) are declared lost as usual. ``counters.mass_silences``
counts the deferrals; a real loss of the whole management network is
therefore not reported as host failures.

On DOWN the monitor reports a southbound ``compute.host.down`` event whose
``time`` is the deadline that passed (Doctor's T01, the detection time),
from monitor ``vigil-heartbeat`` with a unique ``monitor_event_id``; on UP
after the hold-down, ``compute.host.up``. Events go to the ``report`` port
(the inspector's ``receive``, in process) from one task, batched: the hosts
of a rack that fall silent together reach the inspector in one call.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from vigil.domain.faults import EventId, EventStatus, FaultEvent
from vigil.domain.heartbeats import BadDatagram, decode
from vigil.monitor.session import HostState, Session, Timing, Transition

log = logging.getLogger(__name__)

MONITOR_NAME = "vigil-heartbeat"
MAX_SESSIONS = 100_000
DEFAULT_TIMING = Timing()


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """What the monitor needs of an event loop: its monotonic clock and ``call_at``."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


Report = Callable[[Sequence[FaultEvent]], Awaitable[object]]


@dataclass(slots=True)
class Counters:
    datagrams: int = 0
    bad: int = 0
    unknown_host: int = 0
    reported: int = 0
    report_failures: int = 0
    mass_silences: int = 0
    last_bad: str | None = None
    unknown_hosts: set[str] = field(default_factory=set)


class HeartbeatMonitor:
    def __init__(
        self,
        report: Report,
        *,
        timers: Timers,
        known: Callable[[str], bool],
        timing: Timing = DEFAULT_TIMING,
        key: bytes | None = None,
        mass_fraction: float = 0.5,
        mass_min_hosts: int = 10,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        remember: Callable[[str, float, int], object] | None = None,
    ) -> None:
        self._report = report
        self._remember = remember  # a host's first heartbeat, with its timing: kept for the next start
        self._timers = timers
        self._known = known
        self.timing = timing
        self._key = key
        self.mass_fraction = mass_fraction
        self.mass_min_hosts = mass_min_hosts
        self._wall = wall
        # The stamps' clock: the loop's own by default; the wiring gives time.monotonic,
        # as uvloop's loop.time() counts whole milliseconds (its timers still do the arming).
        self._clock = clock or timers.time
        self._new_id = new_id
        self.sessions: dict[str, Session] = {}
        self.listening: str | None = None  # where the adapter listens, for display
        self.counters = Counters()
        self._armed: dict[str, Cancellable] = {}
        self._drain: Callable[[], object] | None = None
        self._queue: asyncio.Queue[FaultEvent] = asyncio.Queue()
        self._reporter: asyncio.Task[None] | None = None
        self._run = uuid.uuid4().hex[:8]  # monitor_event_ids stay unique across restarts
        self._events = 0
        self._disrupted_at = float("-inf")

    # -- lifecycle -------------------------------------------------------------

    def start(self, drain: Callable[[], object] | None = None) -> None:
        """Start the reporting task; ``drain`` reads every datagram waiting in the listener."""
        self._drain = drain
        if self._reporter is None:
            self._reporter = asyncio.create_task(self._reporting(), name="vigil.monitor.report")

    async def aclose(self) -> None:
        for handle in self._armed.values():
            handle.cancel()
        self._armed.clear()
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
            self._reporter = None

    def assume_down(self, hosts: Iterable[str]) -> None:
        """Hosts this monitor declared DOWN before a restart: they come back only after a hold-down."""
        for host in hosts:
            self.sessions.setdefault(host, Session(host, self.timing, HostState.DOWN))

    def assume_up(self, hosts: Mapping[str, tuple[float, int]], grace_s: float) -> None:
        """Hosts this monitor watched before a restart (or before another leader took over), with the interval
        and multiplier they beat at: each is UP and must beat again within ``grace_s`` (or its detection time,
        if longer), else it is declared lost: it died while Vigil was down. Call after :meth:`start`."""
        now = self._clock()
        for host, (interval_ms, mult) in hosts.items():
            if host in self.sessions:
                continue
            session = self.sessions[host] = Session(host, self.timing, HostState.UP)
            session.interval_ms, session.mult = interval_ms, mult
            session.last_seen, session.grace_until = now, now + grace_s
            self._arm(session)

    # -- input -------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """One datagram, as read from the socket."""
        counters = self.counters
        counters.datagrams += 1
        try:
            beat = decode(data, self._key)
        except BadDatagram as exc:
            counters.bad += 1
            counters.last_bad = str(exc)
            log.debug("dropped a bad heartbeat datagram: %s", exc)
            return
        session = self.sessions.get(beat.host)
        if session is None:
            if not self._known(beat.host) or len(self.sessions) >= MAX_SESSIONS:
                counters.unknown_host += 1
                if len(counters.unknown_hosts) < 100:
                    counters.unknown_hosts.add(beat.host)
                log.debug("dropped a heartbeat from unknown host %r", beat.host)
                return
            session = self.sessions[beat.host] = Session(beat.host, self.timing)
        transition = session.heartbeat(beat, self._clock())
        if transition is not None:
            self._transition(transition)
        if beat.host not in self._armed:
            self._arm(session)

    # -- timers ------------------------------------------------------------

    def _arm(self, session: Session) -> None:
        deadline = session.deadline
        if deadline is not None:
            self._armed[session.host] = self._timers.call_at(deadline, lambda: self._fire(session))

    def _fire(self, session: Session) -> None:
        self._armed.pop(session.host, None)
        if self._drain is not None:
            self._drain()
            if session.host in self._armed:  # a drained heartbeat armed it again
                return
        now = self._clock()
        if session.due(now) and self._disrupted(now):
            session.defer(now)
            self.counters.mass_silences += 1
            if self.counters.mass_silences % 100 == 1:
                log.warning("most hosts fell silent at once: suspecting the monitoring side, declaring none lost")
        else:
            transition = session.expire(now)
            if transition is not None:
                self._transition(transition)
        self._arm(session)

    def _disrupted(self, now: float) -> bool:
        """A mass silence now, or one that ended less than a hold-down ago (senders catching up)."""
        if self._mass_silence(now):
            self._disrupted_at = now
            return True
        return now - self._disrupted_at < self.timing.hold_down_s

    def _mass_silence(self, now: float) -> bool:
        up = [s for s in self.sessions.values() if s.state is HostState.UP]
        if len(up) < self.mass_min_hosts:
            return False
        silent = sum(1 for s in up if s.silent(now))
        return silent > self.mass_fraction * len(up)

    # -- output ------------------------------------------------------------

    def _transition(self, transition: Transition) -> None:
        if transition.old is HostState.INIT:
            log.info("host %s: first heartbeat, monitoring it", transition.host)
            session = self.sessions[transition.host]
            if self._remember is not None:
                self._remember(transition.host, session.interval_ms, session.mult)
            return
        log.warning("host %s %s: %s", transition.host, transition.new, transition.reason)
        down = transition.new is HostState.DOWN
        self._events += 1
        wall_now = self._wall()
        at = wall_now - (self._clock() - transition.at)
        event = FaultEvent(
            id=EventId(self._new_id()),
            time=datetime.fromtimestamp(at, UTC),
            type="compute.host.down" if down else "compute.host.up",
            hostname=transition.host,
            status=EventStatus.DOWN if down else EventStatus.UP,
            monitor=MONITOR_NAME,
            monitor_event_id=f"{self._run}-{self._events}",
            received_at=datetime.fromtimestamp(wall_now, UTC),
            severity="critical" if down else None,
            cause=f"management network: {transition.reason}",
        )
        self._queue.put_nowait(event)

    async def _reporting(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._send(batch)

    async def _send(self, batch: list[FaultEvent]) -> None:
        try:
            await self._report(batch)
            self.counters.reported += len(batch)
        except Exception:
            if len(batch) > 1:  # one refused event (a host removed meanwhile) must not take the others along
                for event in batch:
                    await self._send([event])
                return
            self.counters.report_failures += 1
            log.exception("the inspector did not take %s of %s", batch[0].type, batch[0].hostname)

    # -- queries -----------------------------------------------------------

    def wall_of(self, monotonic: float | None) -> float | None:
        """A monotonic instant of this monitor as Unix time."""
        if monotonic is None:
            return None
        return self._wall() - (self._clock() - monotonic)
