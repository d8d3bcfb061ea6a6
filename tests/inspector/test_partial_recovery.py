"""An aggregated host fault that clears partially leaves a warning for what still fails.

Two data-plane NICs down take compute-1 down (aggregation threshold 2). When
one of them recovers the host comes back, but the other NIC is still down:
admins must keep seeing it as a ``host.degraded`` WARNING, the same alarm a
single NIC failure raises, until it recovers too. The inspector runs in
process on the example cloud (a real embedded cloud on SQLite) with a real
alarm book; the publisher only records the alarm changes it is handed.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Committer
from vigil.controller.cloud import CloudTimings, EmbeddedCloud
from vigil.controller.journal import Journal
from vigil.controller.resource_map import ResourceMap
from vigil.domain.alarms import Alarm, AlarmChange, AlarmKind, AlarmState, Lifecycle
from vigil.domain.deliveries import Delivery
from vigil.domain.faults import EventId, EventStatus, Fault, FaultEvent, Severity
from vigil.domain.states import HostStatus
from vigil.inspector.inspector import Inspector
from vigil.inspector.intake import Intake
from vigil.inspector.policy import DEFAULT_POLICIES, FaultPolicy
from vigil.notifier.alarms import AlarmBook
from vigil.store.sql import SqlStore
from vigil.topology.yaml_file import load_topology

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOST = "compute-1"


@dataclass
class Recorder:
    """A publisher that notes each alarm change as it stood when published (the
    change holds the live alarm, which later steps mutate), notifying no one."""

    changes: list[tuple[AlarmKind, Lifecycle, int, list[str]]] = field(default_factory=list)

    def publish(
        self, changes: Sequence[AlarmChange], fault: Fault | None, uow: Any, *, start: bool = True
    ) -> list[Delivery]:
        self.changes.extend((c.alarm.kind, c.lifecycle, c.alarm.version, list(c.alarm.resource_ids)) for c in changes)
        return []

    def deliver(self, deliveries: Sequence[Delivery], fault: Fault | None) -> None:
        return None

    async def settle(self, deliveries: Sequence[Delivery], timeout_s: float) -> None:
        return None

    def of(self, kind: AlarmKind) -> list[tuple[Lifecycle, int, list[str]]]:
        """(lifecycle, version, failures named) of every change to ``kind`` alarms, in order."""
        return [(lifecycle, version, ids) for k, lifecycle, version, ids in self.changes if k is kind]


@dataclass
class Rig:
    cloud: EmbeddedCloud
    alarms: AlarmBook
    published: Recorder
    intake: Intake
    store: SqlStore
    sent: int = 0

    async def report(self, type_: str, link: str, status: EventStatus = EventStatus.DOWN) -> FaultEvent:
        """One event about a link of compute-1, a second after the previous one."""
        self.sent += 1
        event = FaultEvent(
            id=EventId(f"e{self.sent}"),
            time=NOW + timedelta(seconds=self.sent),
            type=type_,
            hostname=HOST,
            status=status,
            monitor="link-agent",
            monitor_event_id=f"m{self.sent}",
            received_at=NOW + timedelta(seconds=self.sent),
            related_to=link,
        )
        [handled] = await self.intake.receive([event])
        return handled

    async def degraded(self) -> list[Alarm]:
        """Every host.degraded alarm of the host, open or cleared (the history is the store's)."""
        return [a for a in await self.store.alarms(kind=AlarmKind.HOST_DEGRADED) if a.resource_id == HOST]

    def active_degraded(self) -> Alarm | None:
        return self.alarms.active(AlarmKind.HOST_DEGRADED, HOST)

    def host_status(self) -> HostStatus:
        return self.cloud.map.host(HOST).status


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    await store.open()
    committer = Committer(store, InProcessBus())
    committer.start()
    journal = Journal(store)
    journal.start()
    timings = CloudTimings(boot_s=0, cold_migration_s=0.01, live_migration_s=0.01, evacuate_s=0.01)
    cloud = EmbeddedCloud(ResourceMap(), committer, lambda: NOW, timings=timings)
    try:
        await cloud.bootstrap(load_topology(EXAMPLE))
        alarms, published = AlarmBook(), Recorder()
        inspector = Inspector(cloud.transactions, alarms, published, policies=DEFAULT_POLICIES)
        intake = Intake(inspector, cloud.transactions, journal, published, clock=lambda: NOW)
        yield Rig(cloud, alarms, published, intake, store)
    finally:
        await intake.aclose()
        await cloud.aclose()
        await journal.stop()
        await committer.stop()
        await store.close()


async def both_links_down(rig: Rig) -> None:
    assert (await rig.report("network.link.down", "eth1")).outcome == "aggregated"
    assert (await rig.report("network.link.down", "eth2")).outcome == "fault_opened"
    assert rig.host_status() is HostStatus.DOWN
    assert rig.active_degraded() is None  # the host.down alarm replaced the warning


@pytest.mark.parametrize(("first", "last"), [("eth1", "eth2"), ("eth2", "eth1")])
async def test_a_partial_recovery_brings_the_host_back_and_warns_of_the_failure_left(
    rig: Rig, first: str, last: str
) -> None:
    await both_links_down(rig)

    assert (await rig.report("network.link.up", first, EventStatus.UP)).outcome == "fault_cleared"
    assert rig.host_status() is HostStatus.UP
    assert rig.alarms.active(AlarmKind.HOST_DOWN, HOST) is None
    warning = rig.active_degraded()
    assert warning is not None
    assert (warning.severity, warning.project) == (Severity.WARNING, None)
    assert warning.resource_ids == [f"network.link/{last}"]
    assert f"network.link/{last}" in warning.reason
    assert f"network.link/{first}" not in warning.reason
    assert warning.details["failures"] == [f"network.link/{last}"]

    assert (await rig.report("network.link.up", last, EventStatus.UP)).outcome == "recovered"
    assert rig.active_degraded() is None
    assert rig.host_status() is HostStatus.UP
    # One warning before the fault (cleared by it), one after; each raised once and cleared once.
    assert [a.state for a in await rig.degraded()] == [AlarmState.CLEARED, AlarmState.CLEARED]
    assert rig.published.of(AlarmKind.HOST_DEGRADED) == [
        (Lifecycle.RAISED, 1, ["network.link/eth1"]),
        (Lifecycle.CLEARED, 2, ["network.link/eth1"]),
        (Lifecycle.RAISED, 1, [f"network.link/{last}"]),
        (Lifecycle.CLEARED, 2, [f"network.link/{last}"]),
    ]


async def test_a_repeated_recovery_report_changes_nothing(rig: Rig) -> None:
    await both_links_down(rig)
    await rig.report("network.link.up", "eth1", EventStatus.UP)
    before = len(rig.published.changes)

    assert (await rig.report("network.link.up", "eth1", EventStatus.UP)).outcome == "recovered"
    assert len(rig.published.changes) == before
    warning = rig.active_degraded()
    assert warning is not None
    assert warning.version == 1
    assert len([a for a in await rig.degraded() if a.active]) == 1


async def test_the_failure_left_failing_again_with_another_takes_the_host_down_again(rig: Rig) -> None:
    await both_links_down(rig)
    await rig.report("network.link.up", "eth1", EventStatus.UP)

    assert (await rig.report("network.link.down", "eth1")).outcome == "fault_opened"
    assert rig.host_status() is HostStatus.DOWN
    assert rig.active_degraded() is None
    assert rig.alarms.active(AlarmKind.HOST_DOWN, HOST) is not None


async def test_below_the_threshold_a_recovery_updates_the_one_warning(rig: Rig) -> None:
    """With three failures needed, two links down are one warning; one recovering
    bumps its version and names the other, the last recovery clears it."""
    rig.intake.inspector.policies["network.link"] = FaultPolicy(critical=False, threshold=3, window_s=10.0)
    await rig.report("network.link.down", "eth1")
    await rig.report("network.link.down", "eth1")  # the same failure reported again
    await rig.report("network.link.down", "eth2")
    await rig.report("network.link.up", "eth1", EventStatus.UP)
    await rig.report("network.link.up", "eth2", EventStatus.UP)

    assert rig.host_status() is HostStatus.UP
    assert len(await rig.degraded()) == 1
    assert rig.published.of(AlarmKind.HOST_DEGRADED) == [
        (Lifecycle.RAISED, 1, ["network.link/eth1"]),
        (Lifecycle.UPDATED, 2, ["network.link/eth1", "network.link/eth2"]),
        (Lifecycle.UPDATED, 3, ["network.link/eth2"]),
        (Lifecycle.CLEARED, 4, ["network.link/eth2"]),
    ]
