"""The map follows Nova's notifications (real captured bodies) on a real map, store and committer.

No OpenStack runs here: the notifications are the ones captured from Nova 34
(``tests/openstack/notifications``), parsed, and handed to :class:`NovaSync`
in the order Nova sent them; the map and the SQLite store must say what Nova
said, except where the rules of the module say otherwise (a stale
notification, an open fault's state).
"""

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.bus.memory import InProcessBus
from vigil.controller.changes import Committer
from vigil.controller.resource_map import ResourceMap
from vigil.controller.transactions import Transactions
from vigil.domain.ids import HostName, InstanceId, ProjectId
from vigil.domain.model import Host, Instance, Project
from vigil.domain.states import AdminState, InstanceState
from vigil.store.sql import SqlStore
from vigil.vim.openstack.notifications import Change, InstanceCreated, parse
from vigil.vim.openstack.sync import NovaSync, notification_time

FIXTURES = Path(__file__).parent.parent / "openstack" / "notifications"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def change(name: str, at: datetime | None = None) -> Change:
    parsed = parse((FIXTURES / f"{name}.json").read_text())
    assert parsed is not None, name
    return dataclasses.replace(parsed, timestamp=str(at.replace(tzinfo=None)) if at else parsed.timestamp)


def created() -> InstanceCreated:
    boot = change("boot.instance.create.end")
    assert isinstance(boot, InstanceCreated)
    return boot


class Rig:
    def __init__(self, tx: Transactions, store: SqlStore) -> None:
        self.tx, self.store = tx, store
        self.sync = NovaSync(tx, None, lambda: NOW)
        self.server = created()

    @property
    def instance(self) -> Instance:
        return self.tx.map.instance(self.server.id)

    async def stored_instance(self) -> Instance:
        found = [r for r in (await self.store.load()).resources if isinstance(r, Instance) and r.id == self.server.id]
        assert len(found) == 1
        return found[0]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SqlStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    await store.open()
    committer = Committer(store, InProcessBus())
    committer.start()
    tx = Transactions(ResourceMap(), committer, lambda: NOW)
    try:
        boot = created()
        unit = tx.begin("bootstrap")
        for name in ("compute-1", "compute-2", "compute-3"):
            unit.create(Host(HostName(name), vcpus=16))
        unit.create(Project(ProjectId(boot.project), "demo"))
        await tx.commit(unit)
        yield Rig(tx, store)
    finally:
        await committer.stop()
        await store.close()


async def test_a_boot_then_a_live_migration_in_nova_order(rig: Rig) -> None:
    for name in (
        "boot.instance.create.end",
        "live_migrate.instance.update.migrating",
        "live_migrate.instance.live_migration_pre.end",
    ):
        assert await rig.sync.apply(change(name)), name
    assert (rig.instance.host, rig.instance.state, rig.instance.migrating_to) == (
        "compute-1",
        InstanceState.MIGRATING,
        "compute-2",
    )
    assert rig.tx.map.used_vcpus("compute-2") == rig.instance.vcpus  # the target's capacity is held
    for name in (
        "live_migrate.instance.live_migration_post_dest.end",
        "live_migrate.instance.live_migration_post.end",
        "live_migrate.instance.update.new_host",
    ):
        await rig.sync.apply(change(name))
    assert (rig.instance.host, rig.instance.state, rig.instance.migrating_to) == (
        "compute-2",
        InstanceState.ACTIVE,
        None,
    )
    stored = await rig.stored_instance()
    assert (stored.host, stored.state) == ("compute-2", InstanceState.ACTIVE)  # durable, not only in memory


async def test_a_notification_older_than_vigils_own_change_is_stale(rig: Rig) -> None:
    await rig.sync.apply(change("boot.instance.create.end", NOW))
    unit = rig.tx.begin("admin reset", now=NOW + timedelta(seconds=5))
    unit.update(rig.instance, state=InstanceState.SHUTOFF)
    await rig.tx.commit(unit)
    rig.sync.saw(unit.batch.events)
    late = change("start.instance.power_on.end", NOW + timedelta(seconds=2))  # sent before Vigil's change
    assert not await rig.sync.apply(late)
    assert rig.instance.state is InstanceState.SHUTOFF
    assert rig.sync.stats.stale == 1
    newer = change("start.instance.power_on.end", NOW + timedelta(seconds=6))
    assert await rig.sync.apply(newer)
    assert rig.instance.state is InstanceState.ACTIVE


async def test_an_open_fault_is_the_inspectors_until_nova_says_it_too(rig: Rig) -> None:
    await rig.sync.apply(change("boot.instance.create.end", NOW))
    enabled = change("enable.service.update", NOW + timedelta(seconds=2))
    failed = [rig.tx.map.host("compute-1"), rig.tx.map.host(enabled.host)]
    unit = rig.tx.begin("fault event: compute.host.down", now=NOW + timedelta(seconds=1))
    for host in failed:
        unit.update(host, forced_down=True, disabled_reason="fault: compute.host.down", reachable=False)
    unit.update(rig.instance, state=InstanceState.ERROR)
    await rig.tx.commit(unit)
    # Newer than the fault, but Nova has not been pushed yet: it still says enabled and ACTIVE.
    await rig.sync.apply(enabled)
    await rig.sync.apply(change("boot.instance.update.active", NOW + timedelta(seconds=2)))
    assert [(h.forced_down, h.disabled_reason) for h in failed] == [(True, "fault: compute.host.down")] * 2
    assert rig.instance.state is InstanceState.ERROR
    # An evacuation moves the server off the failed host: that is Nova's again.
    for name in ("evacuate.instance.rebuild_scheduled", "evacuate.instance.rebuild.end"):
        await rig.sync.apply(change(name, NOW + timedelta(seconds=3)))
    assert rig.instance.host != "compute-1"


async def test_the_backlog_before_the_last_read_is_skipped(rig: Rig) -> None:
    rig.sync._floor = NOW  # as a reconciliation read that began at NOW leaves it
    assert not await rig.sync.apply(change("boot.instance.create.end", NOW - timedelta(minutes=5)))
    assert not rig.tx.map.has(Instance, rig.server.id)
    assert await rig.sync.apply(change("boot.instance.create.end", NOW + timedelta(seconds=1)))
    assert rig.tx.map.has(Instance, rig.server.id)


async def test_nova_moves_that_vigils_table_lists_in_two_steps(rig: Rig) -> None:
    await rig.sync.apply(change("boot.instance.create.end", NOW))
    await rig.sync.apply(change("reset_state.instance.update.error", NOW + timedelta(seconds=1)))
    assert rig.instance.state is InstanceState.ERROR
    await rig.sync.apply(change("stop.instance.power_off.end", NOW + timedelta(seconds=2)))  # ERROR to SHUTOFF
    assert rig.instance.state is InstanceState.SHUTOFF


async def test_service_updates_set_admin_state_and_reason(rig: Rig) -> None:
    disabled = change("disable.service.update", NOW)
    await rig.sync.apply(disabled)
    host = rig.tx.map.host(disabled.host)
    assert (host.admin_state, host.disabled_reason) == (AdminState.DISABLED, "cap maintenance")
    await rig.sync.apply(change("enable.service.update", NOW + timedelta(seconds=1)))
    assert (host.admin_state, host.disabled_reason) == (AdminState.ENABLED, None)
    await rig.sync.apply(change("force_down.service.update", NOW + timedelta(seconds=2)))
    assert host.forced_down


async def test_a_deleted_server_leaves_the_map_and_the_store(rig: Rig) -> None:
    await rig.sync.apply(change("boot.instance.create.end", NOW))
    await rig.sync.apply(change("delete.instance.delete.end", NOW + timedelta(seconds=1)))
    assert not rig.tx.map.has(Instance, InstanceId(rig.server.id))
    assert not [r for r in (await rig.store.load()).resources if getattr(r, "id", None) == rig.server.id]


def test_oslo_timestamps_are_utc() -> None:
    assert notification_time("2026-12-07 10:00:00.123456") == datetime(2026, 12, 7, 10, 0, 0, 123456, tzinfo=UTC)
    assert notification_time(None) is None
    assert notification_time("yesterday") is None
