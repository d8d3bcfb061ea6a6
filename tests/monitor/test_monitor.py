"""The heartbeat monitor on fake timers: sessions, deadlines, drain, and what it reports."""

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence

from vigil.domain.faults import EventStatus, FaultEvent
from vigil.domain.heartbeats import Heartbeat, encode
from vigil.monitor.monitor import MONITOR_NAME, HeartbeatMonitor
from vigil.monitor.session import HostState, Timing

WALL_OFFSET = 1_700_000_000.0


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeTimers:
    """An event loop's clock and ``call_at``, advanced by hand."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Handle, Callable[[], object]]] = []
        self._order = itertools.count()
        self.armed = 0

    def time(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_OFFSET + self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Handle:
        handle = Handle()
        self.armed += 1
        heapq.heappush(self._heap, (when, next(self._order), handle, callback))
        return handle

    def advance(self, to: float) -> None:
        while self._heap and self._heap[0][0] <= to:
            when, _, handle, callback = heapq.heappop(self._heap)
            if not handle.cancelled:
                self.now = max(self.now, when)
                callback()
        self.now = to

    @property
    def pending(self) -> int:
        return sum(1 for *_, h, _ in self._heap if not h.cancelled)


class Inspector:
    def __init__(self) -> None:
        self.batches: list[list[FaultEvent]] = []
        self.refuse: set[str] = set()

    async def receive(self, events: Sequence[FaultEvent]) -> list[FaultEvent]:
        if any(e.hostname in self.refuse for e in events):
            raise ValueError("unknown host")
        self.batches.append(list(events))
        return list(events)

    @property
    def events(self) -> list[FaultEvent]:
        return [e for batch in self.batches for e in batch]


def datagram(host: str, seq: int, **kw: object) -> bytes:
    return encode(Heartbeat(host, seq, kw.get("interval_ms", 20), kw.get("mult", 3), sent=0.0))  # type: ignore[arg-type]


def make(
    timers: FakeTimers, inspector: Inspector, hosts: set[str] | None = None, key: bytes | None = None
) -> HeartbeatMonitor:
    known = hosts if hosts is not None else {f"compute-{i}" for i in range(1, 101)}
    monitor = HeartbeatMonitor(
        inspector.receive,
        timers=timers,
        known=known.__contains__,
        timing=Timing(20, 3, 1.0),
        key=key,
        wall=timers.wall,
    )
    monitor.start()
    return monitor


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_silent_host_is_reported_down_once_with_the_deadline_as_its_time() -> None:
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    for seq in range(1, 11):
        timers.advance(seq * 0.02)
        monitor.receive(datagram("compute-1", seq))
    timers.advance(0.2 + 0.060 + 0.003)
    await settle()
    [event] = inspector.events
    assert (event.type, event.status, event.hostname) == ("compute.host.down", EventStatus.DOWN, "compute-1")
    assert event.monitor == MONITOR_NAME
    assert event.time.timestamp() == WALL_OFFSET + 0.26
    assert monitor.sessions["compute-1"].state is HostState.DOWN
    timers.advance(5.0)
    await settle()
    assert len(inspector.events) == 1
    await monitor.aclose()


async def test_timers_are_armed_per_detection_time_not_per_heartbeat() -> None:
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    for seq in range(1, 501):  # 10 s of heartbeats at 20 ms
        timers.advance(seq * 0.02)
        monitor.receive(datagram("compute-1", seq))
    assert timers.armed < 500 / 2
    assert timers.pending == 1
    assert inspector.events == []
    await monitor.aclose()


async def test_a_heartbeat_waiting_in_the_socket_is_drained_before_declaring_the_host_down() -> None:
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    monitor.receive(datagram("compute-1", 1))
    waiting = [datagram("compute-1", 2)]

    def drain() -> None:
        while waiting:
            monitor.receive(waiting.pop())

    monitor.start(drain)
    timers.advance(0.07)  # the loop was busy past the deadline; the heartbeat sat in the buffer
    await settle()
    assert inspector.events == []
    assert monitor.sessions["compute-1"].state is HostState.UP
    await monitor.aclose()


async def test_a_host_comes_back_up_after_the_hold_down_and_is_reported_up() -> None:
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    monitor.receive(datagram("compute-2", 1))
    timers.advance(1.0)
    for seq in range(2, 60):
        timers.advance(1.0 + seq * 0.02)
        monitor.receive(datagram("compute-2", seq))
    await settle()
    assert [e.type for e in inspector.events] == ["compute.host.down", "compute.host.up"]
    down, up = inspector.events
    assert down.monitor_event_id != up.monitor_event_id
    assert up.time.timestamp() >= down.time.timestamp() + 1.0
    await monitor.aclose()


async def test_bad_datagrams_and_unknown_hosts_are_counted_and_dropped() -> None:
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector, hosts={"compute-1"}, key=b"secret")
    monitor.receive(b"not json")
    monitor.receive(datagram("compute-1", 1))  # no MAC
    monitor.receive(encode(Heartbeat("compute-9", 1, 20, 3, 0.0), b"secret"))
    monitor.receive(encode(Heartbeat("compute-1", 1, 20, 3, 0.0), b"other"))
    monitor.receive(encode(Heartbeat("compute-1", 1, 20, 3, 0.0), b"secret"))
    counters = monitor.counters
    assert (counters.datagrams, counters.bad, counters.unknown_host) == (5, 3, 1)
    assert counters.unknown_hosts == {"compute-9"}
    assert list(monitor.sessions) == ["compute-1"]
    await monitor.aclose()


async def test_hosts_that_fall_silent_together_reach_the_inspector_in_one_batch() -> None:
    """A rack of 40 of 100 hosts loses its management switch."""
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    for seq in range(1, 11):
        timers.advance(seq * 0.02)
        for i in range(1, 101):
            if i > 40 or seq == 1:
                monitor.receive(datagram(f"compute-{i}", seq))
    await settle()
    assert [len(b) for b in inspector.batches] == [40]
    assert monitor.counters.mass_silences == 0
    await monitor.aclose()


async def test_when_most_hosts_fall_silent_at_once_none_is_declared_lost_until_others_speak_again() -> None:
    """Vigil's side is suspected (its machine, its management network): Kubernetes' full-disruption rule."""
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    for i in range(1, 21):
        monitor.receive(datagram(f"compute-{i}", 1))
    timers.advance(1.0)  # a second of silence from all 20
    await settle()
    assert inspector.events == []
    assert monitor.counters.mass_silences > 0
    assert all(s.state is HostState.UP for s in monitor.sessions.values())
    for seq in range(2, 100):  # 19 come back; compute-20 stays silent
        timers.advance(1.0 + seq * 0.02)
        for i in range(1, 20):
            monitor.receive(datagram(f"compute-{i}", seq))
        if seq == 40:  # within a hold-down of the silence's end, the stragglers are not judged yet
            await settle()
            assert inspector.events == []
    await settle()
    assert [(e.hostname, e.type) for e in inspector.events] == [("compute-20", "compute.host.down")]
    await monitor.aclose()


async def test_an_event_the_inspector_refuses_does_not_take_the_batch_along() -> None:
    timers, inspector = FakeTimers(), Inspector()
    inspector.refuse = {"compute-3"}
    monitor = make(timers, inspector)
    for i in range(1, 6):
        monitor.receive(datagram(f"compute-{i}", 1))
    timers.advance(0.1)
    await settle()
    assert sorted(e.hostname for e in inspector.events) == ["compute-1", "compute-2", "compute-4", "compute-5"]
    assert monitor.counters.report_failures == 1
    await monitor.aclose()


async def test_a_host_assumed_down_after_a_restart_is_reported_up_after_the_hold_down() -> None:
    timers, inspector = FakeTimers(), Inspector()
    monitor = make(timers, inspector)
    monitor.assume_down(["compute-1"])
    for seq in range(1, 60):
        timers.advance(seq * 0.02)
        monitor.receive(datagram("compute-1", seq))
    await settle()
    assert [e.type for e in inspector.events] == ["compute.host.up"]
    await monitor.aclose()
