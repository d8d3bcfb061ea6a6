"""An embedded cloud on a real SQLite store and the in-process bus.

``rig`` bootstraps a small two-rack cloud (no ports given, so each instance
gets one default port) and hands out the cloud with its store, bus and
committer; ``events`` subscribes to the bus after the bootstrap, so a test
sees exactly the events its own operations publish.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.bus.memory import InProcessBus, Subscription
from vigil.controller.changes import Committer
from vigil.controller.cloud import CloudTimings, EmbeddedCloud
from vigil.controller.resource_map import ResourceMap
from vigil.domain.ids import GroupId, HostName, InstanceId, ProjectId, SwitchName
from vigil.domain.model import Host, Instance, Project, ServerGroup, Switch
from vigil.domain.states import GroupPolicy
from vigil.domain.topology import Topology
from vigil.store.sql import SqlStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

TIMINGS = CloudTimings(boot_s=0, cold_migration_s=0.01, live_migration_s=0.01, evacuate_s=0.01)


def clock() -> datetime:
    return NOW


def two_racks() -> Topology:
    """compute-1/2 behind tor-1 and compute-3/4 behind tor-2, 8 vCPUs each.

    vnf-a runs an ACT/STBY pair (anti-affinity group ``vnf-a-ha``) on
    compute-1 and compute-3 and a worker on compute-1; vnf-b runs one
    instance on compute-2.
    """
    return Topology(
        switches=[Switch(SwitchName("tor-1")), Switch(SwitchName("tor-2"))],
        hosts=[
            Host(HostName(f"compute-{n}"), zone=f"az-{(n + 1) // 2}", switch=SwitchName(f"tor-{(n + 1) // 2}"))
            for n in range(1, 5)
        ],
        projects=[Project(ProjectId("vnf-a"), "VNF A"), Project(ProjectId("vnf-b"), "VNF B")],
        groups=[ServerGroup(GroupId("vnf-a-ha"), "app-ha", ProjectId("vnf-a"), GroupPolicy.ANTI_AFFINITY)],
        instances=[
            Instance(
                InstanceId("act"),
                "app-act",
                ProjectId("vnf-a"),
                HostName("compute-1"),
                vcpus=2,
                group=GroupId("vnf-a-ha"),
                metadata={"role": "ACT"},
            ),
            Instance(
                InstanceId("stby"),
                "app-stby",
                ProjectId("vnf-a"),
                HostName("compute-3"),
                vcpus=2,
                group=GroupId("vnf-a-ha"),
                metadata={"role": "STBY"},
            ),
            Instance(InstanceId("worker"), "worker", ProjectId("vnf-a"), HostName("compute-1"), vcpus=1),
            Instance(InstanceId("web"), "web", ProjectId("vnf-b"), HostName("compute-2"), vcpus=1),
        ],
    )


@dataclass
class Rig:
    cloud: EmbeddedCloud
    committer: Committer
    store: SqlStore
    bus: InProcessBus

    @property
    def map(self) -> ResourceMap:
        return self.cloud.map


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    sql_store = SqlStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    await sql_store.open()
    yield sql_store
    await sql_store.close()


@pytest.fixture
async def rig(store: SqlStore) -> AsyncIterator[Rig]:
    bus = InProcessBus()
    committer = Committer(store, bus)
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, clock, timings=TIMINGS)
    try:
        await cloud.bootstrap(two_racks())
        yield Rig(cloud, committer, store, bus)
    finally:
        await cloud.aclose()
        await committer.stop()


@pytest.fixture
def cloud(rig: Rig) -> EmbeddedCloud:
    return rig.cloud


@pytest.fixture
def events(rig: Rig) -> Iterator[Subscription]:
    subscription = rig.bus.subscribe()
    yield subscription
    subscription.close()
