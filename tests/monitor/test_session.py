"""The per-host detection state machine, on a fake clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.domain.heartbeats import Heartbeat
from vigil.monitor.session import HostState, Session, Timing

TIMING = Timing(interval_ms=20, mult=3, hold_down_s=1.0)


def beat(seq: int, *, interval_ms: float | None = 20, mult: int | None = 3, epoch: int | None = None) -> Heartbeat:
    return Heartbeat("compute-1", seq, interval_ms, mult, sent=0.0, epoch=epoch)


def up_session(at: float = 0.0) -> Session:
    session = Session("compute-1", TIMING)
    session.heartbeat(beat(1), at)
    return session


def test_a_host_never_heard_from_is_init_and_has_no_deadline() -> None:
    session = Session("compute-1", TIMING)
    assert session.state is HostState.INIT
    assert session.deadline is None
    assert session.expire(1e9) is None


def test_the_first_heartbeat_makes_the_host_up_with_a_deadline_of_mult_intervals() -> None:
    session = Session("compute-1", TIMING)
    transition = session.heartbeat(beat(1), 10.0)
    assert transition is not None
    assert (transition.old, transition.new) == (HostState.INIT, HostState.UP)
    assert session.deadline == 10.0 + 0.060


def test_silence_past_the_deadline_declares_the_host_down_at_the_deadline() -> None:
    session = up_session(at=10.0)
    assert session.expire(10.059) is None
    transition = session.expire(10.065)
    assert transition is not None
    assert (transition.old, transition.new) == (HostState.UP, HostState.DOWN)
    assert transition.at == 10.060  # the deadline, not when the timer ran
    assert round(transition.lateness_s, 6) == 0.005
    assert session.state is HostState.DOWN
    assert session.deadline is None  # nothing more to miss


def test_a_check_more_than_a_detection_time_late_gives_the_host_one_more_detection_time() -> None:
    """The monitor itself was not running (its machine stalled): it cannot blame the host."""
    session = up_session(at=10.0)
    assert session.expire(10.2) is None
    assert (session.stalls, session.deadline) == (1, 10.26)
    assert session.heartbeat(beat(2), 10.21) is None  # the host was alive after all
    assert session.state is HostState.UP
    assert session.deadline == pytest.approx(10.27)
    assert session.expire(10.5) is None  # stalled again
    transition = session.expire(10.56)
    assert transition is not None
    assert (transition.new, transition.at) == (HostState.DOWN, 10.56)


def test_the_senders_advertised_interval_and_multiplier_set_the_deadline() -> None:
    session = Session("compute-1", TIMING)
    session.heartbeat(beat(1, interval_ms=50, mult=4), 0.0)
    assert session.deadline == 0.2
    session.heartbeat(beat(2, interval_ms=None, mult=None), 0.05)
    assert session.deadline == 0.25  # kept from before


def test_the_configured_defaults_apply_when_the_sender_advertises_nothing() -> None:
    session = Session("compute-1", Timing(interval_ms=100, mult=5))
    session.heartbeat(beat(1, interval_ms=None, mult=None), 0.0)
    assert session.deadline == 0.5


def test_duplicates_and_overtaken_heartbeats_are_ignored_and_counted_late() -> None:
    session = up_session(at=0.0)
    session.heartbeat(beat(5), 0.02)
    assert session.lost == 3
    deadline = session.deadline
    assert session.heartbeat(beat(5), 0.04) is None
    assert session.heartbeat(beat(4), 0.05) is None
    assert (session.received, session.late) == (2, 2)
    assert session.deadline == deadline  # a late heartbeat does not keep the host alive


def test_a_restarted_agent_starts_counting_again() -> None:
    session = Session("compute-1", TIMING)
    session.heartbeat(beat(5000, epoch=1), 0.0)
    session.heartbeat(beat(1, epoch=2), 0.02)
    assert (session.received, session.late, session.last_seq) == (2, 0, 1)
    session.heartbeat(beat(9000), 0.04)
    session.heartbeat(beat(1), 0.06)  # no epoch: far below the last is a restart
    assert (session.received, session.late) == (4, 0)


def test_a_down_host_comes_back_only_after_the_hold_down() -> None:
    session = up_session(at=0.0)
    assert session.expire(0.061) is not None
    t, seq = 2.0, 2
    while t < 2.0 + 1.0 - 0.02:
        assert session.heartbeat(beat(seq), t) is None
        assert session.state is HostState.DOWN
        t, seq = round(t + 0.02, 6), seq + 1
    transition = session.heartbeat(beat(seq), 3.0)
    assert transition is not None
    assert (transition.old, transition.new, transition.at) == (HostState.DOWN, HostState.UP, 3.0)


def test_silence_during_the_hold_down_starts_it_again() -> None:
    session = up_session(at=0.0)
    session.expire(0.061)
    for i in range(40):
        session.heartbeat(beat(2 + i), 2.0 + i * 0.02)
    assert session.expire(2.78 + 0.061) is None  # the hold-down's deadline: no event, restart
    assert session.recovering_since is None
    assert session.heartbeat(beat(100), 3.05) is None  # would have completed the first hold-down
    assert session.state is HostState.DOWN
    assert session.recovering_since == 3.05


def test_a_host_assumed_down_recovers_through_the_hold_down() -> None:
    session = Session("compute-1", TIMING, HostState.DOWN)
    assert session.deadline is None
    assert session.heartbeat(beat(1), 0.0) is None
    for i in range(1, 50):
        session.heartbeat(beat(1 + i), i * 0.02)
    transition = session.heartbeat(beat(100), 1.0)
    assert transition is not None
    assert transition.new is HostState.UP


@given(st.lists(st.floats(min_value=0.0001, max_value=0.0599), min_size=1, max_size=200))
def test_a_host_is_never_down_while_heartbeats_arrive_within_the_detection_time(gaps: list[float]) -> None:
    session = up_session(at=0.0)
    now = 0.0
    for seq, gap in enumerate(gaps, start=2):
        # the timer may fire at any moment before the next heartbeat arrives
        assert session.expire(now + gap * 0.999) is None
        now += gap
        session.heartbeat(beat(seq), now)
        assert session.state is HostState.UP


@given(st.floats(min_value=0.0, max_value=100.0), st.floats(min_value=0.0, max_value=0.05))
def test_a_silent_host_is_down_at_the_first_check_past_its_deadline(start: float, late: float) -> None:
    session = up_session(at=start)
    deadline = session.deadline
    assert deadline is not None
    transition = session.expire(deadline + late)
    assert transition is not None
    assert transition.at == deadline
    assert transition.noticed == deadline + late


@given(st.lists(st.tuples(st.booleans(), st.floats(min_value=0.001, max_value=0.2)), max_size=300))
def test_a_flapping_host_raises_at_most_one_down_per_hold_down(script: list[tuple[bool, float]]) -> None:
    """Whatever the pattern of heartbeats and silences, UP follows DOWN only after a
    hold-down, so the number of DOWNs is bounded by the time over the hold-down."""
    session = up_session(at=0.0)
    now, seq, downs = 0.0, 1, 0
    last_down: float | None = None
    for sends, gap in script:
        now += gap
        transition = session.expire(now) if not sends else None
        if sends:
            expired = session.expire(now)  # the timer ran before the heartbeat came
            seq += 1
            transition = expired or session.heartbeat(beat(seq), now)
        if transition is not None and transition.new is HostState.DOWN:
            downs += 1
            last_down = transition.noticed
        if transition is not None and transition.new is HostState.UP and last_down is not None:
            assert now - last_down >= TIMING.hold_down_s - 1e-6
    assert downs <= 1 + now / TIMING.hold_down_s
