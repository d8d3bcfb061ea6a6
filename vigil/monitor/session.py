"""One host's heartbeat session: a BFD-like detection state machine.

States (:class:`HostState`):

* ``INIT``: never heard from (or not since Vigil started). Nothing is
  expected, so nothing can be missed: an unknown state, never DOWN.
* ``UP``: heartbeats arrive. The *deadline* is the last accepted heartbeat
  plus the detection time, ``mult x interval`` (the sender's advertised
  values, else the configured defaults).
* ``DOWN``: the deadline passed without a heartbeat; the transition's time
  is that deadline. A host comes back UP only after a *hold-down*:
  heartbeats for at least ``hold_down_s``, at least ``mult`` of them, with
  no deadline missed in between (a miss starts the hold-down again), so a
  flapping host does not flap its alarms.

The monitor's own stalls: if the check of a deadline runs more than a
detection time late, the monitor itself was not running (its process or its
machine stalled) and cannot tell a silent host from its own absence; it
gives the host one more detection time from that moment (``stalls`` counts
these), so a pause of Vigil does not take every host down.

Sequence numbers: a heartbeat whose ``seq`` is not above the last accepted
one is *late* (a duplicate, or overtaken by a later one) and ignored; a gap
counts the missing ones as *lost*. A new ``epoch`` (the agent restarted)
starts the numbering again; without epochs, a ``seq`` far below the last
one (more than :data:`RESTART_GAP`) is taken for a restart too.

"Now" is passed in (monotonic seconds); nothing here reads a clock or
arms a timer: :mod:`vigil.monitor.monitor` does.
"""

from dataclasses import dataclass
from enum import StrEnum

from vigil.domain.heartbeats import Heartbeat

RESTART_GAP = 1000
EPSILON_S = 1e-6  # timers may fire a hair before their time


class HostState(StrEnum):
    INIT = "INIT"
    UP = "UP"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class Timing:
    """The monitor's defaults: BFD-like 20 ms x 3, one second of hold-down."""

    interval_ms: float = 20.0
    mult: int = 3
    hold_down_s: float = 1.0

    def __post_init__(self) -> None:
        if self.interval_ms <= 0 or self.mult < 1 or self.hold_down_s < 0:
            raise ValueError("interval_ms and mult must be positive, hold_down_s not negative")


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state. ``at`` is when it happened by the rules (for DOWN the
    deadline that passed), ``noticed`` when the monitor saw it (``>= at``)."""

    host: str
    old: HostState
    new: HostState
    at: float
    noticed: float
    reason: str

    @property
    def lateness_s(self) -> float:
        return self.noticed - self.at


class Session:
    __slots__ = (
        "epoch",
        "grace_until",
        "hold_down_s",
        "host",
        "interval_ms",
        "last_seen",
        "last_seq",
        "last_transition",
        "late",
        "lost",
        "max_gap_s",
        "mult",
        "received",
        "recovering_count",
        "recovering_since",
        "stalls",
        "state",
        "transitions",
    )

    def __init__(self, host: str, timing: Timing, state: HostState = HostState.INIT) -> None:
        self.host = host
        self.state = state
        self.interval_ms = timing.interval_ms
        self.mult = timing.mult
        self.hold_down_s = timing.hold_down_s
        self.last_seq: int | None = None
        self.epoch: int | None = None
        self.last_seen: float | None = None
        self.received = 0
        self.lost = 0
        self.late = 0
        self.max_gap_s = 0.0
        self.stalls = 0
        self.grace_until: float | None = None
        self.transitions = 0
        self.recovering_since: float | None = None
        self.recovering_count = 0
        self.last_transition: Transition | None = None

    @property
    def detect_s(self) -> float:
        return self.mult * self.interval_ms / 1000

    @property
    def deadline(self) -> float | None:
        """When silence declares the host lost (UP), or restarts the hold-down
        (DOWN, recovering); None when nothing is expected."""
        if self.last_seen is None:
            return None
        if self.state is HostState.UP:
            deadline = self.last_seen + self.detect_s
            return deadline if self.grace_until is None else max(deadline, self.grace_until)
        if self.state is HostState.DOWN and self.recovering_since is not None:
            return self.last_seen + self.detect_s
        return None

    def _accept(self, beat: Heartbeat) -> bool:
        """Take the sequence number (counting lost ones), or refuse a late one."""
        restarted = beat.epoch is not None and beat.epoch != self.epoch
        if self.last_seq is None or restarted or beat.seq > self.last_seq:
            if self.last_seq is not None and not restarted:
                self.lost += beat.seq - self.last_seq - 1
        elif self.last_seq - beat.seq > RESTART_GAP and beat.epoch is None:
            pass  # an agent restarted without an epoch: numbering starts again
        else:
            self.late += 1
            return False
        self.last_seq = beat.seq
        self.epoch = beat.epoch
        return True

    def heartbeat(self, beat: Heartbeat, now: float) -> Transition | None:
        """A heartbeat received at ``now``; the transition it causes, if any."""
        if not self._accept(beat):
            return None
        self.received += 1
        if beat.interval_ms is not None:
            self.interval_ms = beat.interval_ms
        if beat.mult is not None:
            self.mult = beat.mult
        missed = self.deadline is not None and now > self.deadline + EPSILON_S
        if self.last_seen is not None and self.state is not HostState.INIT:
            self.max_gap_s = max(self.max_gap_s, now - self.last_seen)
        self.last_seen = now
        self.grace_until = None
        if self.state is HostState.INIT:
            return self._move(HostState.UP, now, now, "first heartbeat")
        if self.state is HostState.DOWN:
            if self.recovering_since is None or missed:
                self.recovering_since, self.recovering_count = now, 0
            self.recovering_count += 1
            held = now - self.recovering_since
            if held + EPSILON_S >= self.hold_down_s and self.recovering_count >= self.mult:
                reason = f"{self.recovering_count} heartbeats over {held * 1000:.0f} ms (hold-down)"
                return self._move(HostState.UP, now, now, reason)
        return None

    def due(self, now: float) -> bool:
        """Whether an UP host's deadline has passed at ``now``."""
        deadline = self.deadline
        return self.state is HostState.UP and deadline is not None and now + EPSILON_S >= deadline

    def silent(self, now: float) -> bool:
        """Whether an UP host has sent nothing for a detection time (deferred or not)."""
        last = self.last_seen
        return self.state is HostState.UP and last is not None and now + EPSILON_S >= last + self.detect_s

    def defer(self, now: float) -> None:
        """Not now: give the host one more detection time from ``now`` (the monitor cannot judge)."""
        self.grace_until = now + self.detect_s

    def expire(self, now: float) -> Transition | None:
        """The deadline's timer fired at ``now``: declare the host lost if it passed."""
        deadline = self.deadline
        if deadline is None or now + EPSILON_S < deadline:
            return None
        if self.state is HostState.DOWN:  # silence during the hold-down: start it again
            self.recovering_since, self.recovering_count = None, 0
            return None
        if now - deadline > self.detect_s:  # the monitor itself was not running: one more detection time
            self.stalls += 1
            self.defer(now)
            return None
        silent_ms = (deadline - (deadline if self.last_seen is None else self.last_seen)) * 1000
        reason = f"no heartbeat for {silent_ms:.0f} ms ({self.mult} x {self.interval_ms:g} ms)"
        return self._move(HostState.DOWN, deadline, now, reason)

    def _move(self, new: HostState, at: float, noticed: float, reason: str) -> Transition:
        transition = Transition(self.host, self.state, new, at, noticed, reason)
        self.state = new
        self.recovering_since, self.recovering_count = None, 0
        self.transitions += 1
        self.last_transition = transition
        return transition
