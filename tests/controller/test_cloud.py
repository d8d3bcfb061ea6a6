"""The embedded cloud: its operations change the map at once, persist, and publish events in order."""

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest

from vigil.bus.memory import InProcessBus, Subscription
from vigil.controller.changes import Committer
from vigil.controller.cloud import CloudTimings, EmbeddedCloud
from vigil.controller.resource_map import ResourceMap
from vigil.domain.errors import Conflict, IllegalTransition, InvalidTopology, NotFound, NoValidHost
from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.ids import HostName, InstanceId, ProjectId
from vigil.domain.model import Host, Instance, Project, ResourceType, as_dict, resource_type
from vigil.domain.states import AdminState, DataPlaneStatus, HostStatus, InstanceState
from vigil.domain.topology import Topology
from vigil.store.sql import SqlStore

from .conftest import NOW, TIMINGS, Rig, clock, two_racks

ACTIVE, BUILD, SHUTOFF, MIGRATING, ERROR = (
    InstanceState.ACTIVE,
    InstanceState.BUILD,
    InstanceState.SHUTOFF,
    InstanceState.MIGRATING,
    InstanceState.ERROR,
)


def brief(events: Iterable[ResourceEvent]) -> list[tuple[str, str, dict[str, tuple[Any, Any]]]]:
    """(event type, resource id, changes) of each event, for comparing with a literal."""
    return [(e.event_type, e.resource_id, dict(e.changes)) for e in events]


async def stored_state(rig: Rig) -> dict[tuple[ResourceType, str], dict[str, Any]]:
    snapshot = await rig.store.load()
    return {(resource_type(r), r.ident): as_dict(r) for r in snapshot.resources}


def map_state(rmap: ResourceMap) -> dict[tuple[ResourceType, str], dict[str, Any]]:
    return {(resource_type(r), r.ident): as_dict(r) for r in rmap.all()}


async def stop_instance(cloud: EmbeddedCloud, ident: str) -> None:
    await cloud.stop(ident)
    assert cloud.map.instance(ident).state is SHUTOFF


# -- bootstrap -------------------------------------------------------------------


async def test_bootstrap_loads_the_topology_gives_each_instance_a_port_and_persists_it(rig: Rig) -> None:
    assert rig.map.counts() == {
        "switches": 2,
        "hosts": 4,
        "projects": 2,
        "server_groups": 1,
        "instances": 4,
        "ports": 4,
    }
    for inst in rig.map.instances():
        [port] = rig.map.ports_of(inst.id)
        assert (port.host, port.project, port.network) == (inst.host, inst.project, "data")
    assert await stored_state(rig) == map_state(rig.map)
    assert (await rig.store.load()).last_seq == 0  # bootstrap is state, not events


async def test_bootstrap_places_instances_without_a_host_and_refuses_a_second_bootstrap(rig: Rig) -> None:
    with pytest.raises(Conflict, match="already holds resources"):
        await rig.cloud.bootstrap(two_racks())


async def test_bootstrap_schedules_hostless_instances_with_their_group_policy(store: SqlStore) -> None:
    topology = two_racks()
    for inst in topology.instances:
        inst.host = None
    committer = Committer(store, InProcessBus())
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, clock, timings=TIMINGS)
    try:
        await cloud.bootstrap(topology)
        act, stby = cloud.map.instance("act"), cloud.map.instance("stby")
        assert act.host is not None
        assert stby.host is not None
        assert act.host != stby.host
    finally:
        await cloud.aclose()
        await committer.stop()


async def test_bootstrap_refuses_a_topology_with_dangling_references(store: SqlStore) -> None:
    topology = two_racks()
    topology.instances[0].host = HostName("compute-9")
    committer = Committer(store, InProcessBus())
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, clock, timings=TIMINGS)
    try:
        with pytest.raises(InvalidTopology, match="compute-9"):
            await cloud.bootstrap(topology)
        assert cloud.map.counts()["hosts"] == 0
    finally:
        await committer.stop()


# -- boot --------------------------------------------------------------------------


async def test_boot_creates_the_instance_in_build_then_it_goes_active(cloud: EmbeddedCloud) -> None:
    op = await cloud.boot(name="new", project="vnf-b", vcpus=2)
    assert op.instance.state is BUILD
    assert cloud.map.instance(op.instance.id) is op.instance
    inst = await op.done
    assert inst.state is ACTIVE


async def test_boot_schedules_on_the_emptiest_host_and_creates_a_port_per_network(cloud: EmbeddedCloud) -> None:
    op = await cloud.boot(name="new", project="vnf-b", networks=("data", "mgmt"), metadata={"tier": "web"})
    inst = await op.done
    # compute-4 is the only host with nothing on it.
    assert inst.host == "compute-4"
    assert inst.metadata == {"tier": "web"}
    ports = cloud.map.ports_of(inst.id)
    assert sorted(p.network for p in ports) == ["data", "mgmt"]
    assert {p.host for p in ports} == {"compute-4"}
    assert cloud.map.used_vcpus("compute-4") == 1


async def test_boot_publishes_created_events_then_the_build_to_active_update(
    cloud: EmbeddedCloud, events: Subscription
) -> None:
    op = await cloud.boot(name="new", project="vnf-b", vcpus=2, host="compute-2")
    await op.done
    published = events.drain()
    [port] = cloud.map.ports_of(op.instance.id)
    assert [(e.event_type, e.resource_id, e.reason) for e in published] == [
        ("instance.created", op.instance.id, "boot"),
        ("port.created", port.id, "boot"),
        ("instance.updated", op.instance.id, "boot"),
    ]
    created = published[0].changes
    assert created["state"] == (None, BUILD)
    assert created["host"] == (None, "compute-2")
    assert created["vcpus"] == (None, 2)
    assert "group" not in created  # None-valued fields are left out
    assert published[2].changes == {"state": (BUILD, ACTIVE)}
    assert all(e.project == "vnf-b" and e.time == NOW for e in published)
    assert [e.seq for e in published] == [1, 2, 3]


async def test_booting_a_group_member_keeps_anti_affinity(cloud: EmbeddedCloud) -> None:
    op = await cloud.boot(name="third", project="vnf-a", group="vnf-a-ha")
    assert op.instance.host not in {"compute-1", "compute-3"}
    await op.done


async def test_boot_on_a_named_host_that_is_not_up_is_refused(cloud: EmbeddedCloud) -> None:
    await cloud.set_host_enabled("compute-4", False, reason="maintenance")
    with pytest.raises(NoValidHost, match="compute-4 is MAINTENANCE"):
        await cloud.boot(name="x", project="vnf-a", host="compute-4")
    assert len(cloud.map.instances()) == 4


async def test_boot_that_fits_nowhere_is_refused_and_creates_nothing(cloud: EmbeddedCloud, rig: Rig) -> None:
    before = await stored_state(rig)
    with pytest.raises(NoValidHost):
        await cloud.boot(name="huge", project="vnf-a", vcpus=9)
    assert len(cloud.map.instances()) == 4
    assert await stored_state(rig) == before


async def test_boot_refuses_unknown_projects_and_other_projects_groups(cloud: EmbeddedCloud) -> None:
    with pytest.raises(NotFound, match="project 'nobody'"):
        await cloud.boot(name="x", project="nobody")
    with pytest.raises(NotFound, match="server group 'vnf-a-ha'"):
        await cloud.boot(name="x", project="vnf-b", group="vnf-a-ha")


async def test_an_instance_deleted_while_building_stays_deleted(cloud: EmbeddedCloud, rig: Rig) -> None:
    cloud.timings = CloudTimings(boot_s=0.02)
    op = await cloud.boot(name="short-lived", project="vnf-b", host="compute-4")
    await cloud.delete(op.instance.id)
    await op.done
    with pytest.raises(NotFound):
        cloud.map.instance(op.instance.id)
    assert cloud.map.instances_on("compute-4") == []
    assert cloud.map.used_vcpus("compute-4") == 0
    assert op.instance.id not in {r.ident for r in (await rig.store.load()).resources}


async def test_an_instance_deleted_while_being_evacuated_stays_deleted(cloud: EmbeddedCloud, rig: Rig) -> None:
    await cloud.set_host_forced_down("compute-2", True)
    op = await cloud.evacuate("web", target="compute-4")
    await cloud.delete("web")
    await op.done
    with pytest.raises(NotFound):
        cloud.map.instance("web")
    assert cloud.map.used_vcpus("compute-4") == 0
    assert await stored_state(rig) == map_state(cloud.map)


# -- delete ------------------------------------------------------------------------


async def test_delete_removes_the_instance_and_its_ports_from_map_and_store(
    cloud: EmbeddedCloud, rig: Rig, events: Subscription
) -> None:
    [port] = cloud.map.ports_of("worker")
    await cloud.delete("worker")
    with pytest.raises(NotFound):
        cloud.map.instance("worker")
    with pytest.raises(NotFound):
        cloud.map.port(port.id)
    assert [i.id for i in cloud.map.instances_on("compute-1")] == ["act"]
    assert cloud.map.used_vcpus("compute-1") == 2
    assert brief(events.drain()) == [("port.deleted", port.id, {}), ("instance.deleted", "worker", {})]
    assert await stored_state(rig) == map_state(cloud.map)


async def test_a_migrating_instance_cannot_be_deleted(cloud: EmbeddedCloud) -> None:
    op = await cloud.migrate("worker", target="compute-2")
    with pytest.raises(IllegalTransition, match="MIGRATING to DELETED"):
        await cloud.delete("worker")
    await op.done


async def test_deleting_an_unknown_instance_is_not_found(cloud: EmbeddedCloud) -> None:
    with pytest.raises(NotFound):
        await cloud.delete("nope")


# -- migration ---------------------------------------------------------------------


@pytest.mark.parametrize("live", [False, True])
async def test_a_migration_holds_capacity_on_both_hosts_then_lands_on_the_target(
    cloud: EmbeddedCloud, rig: Rig, events: Subscription, live: bool
) -> None:
    # Long enough that the store is read below before the migration ends.
    cloud.timings = CloudTimings(cold_migration_s=0.2, live_migration_s=0.2)
    op = await cloud.migrate("worker", target="compute-2", live=live)
    inst = cloud.map.instance("worker")
    assert (inst.state, inst.host, inst.migrating_to) == (MIGRATING, "compute-1", "compute-2")
    assert cloud.map.used_vcpus("compute-1") == 3
    assert cloud.map.used_vcpus("compute-2") == 2
    assert [i.id for i in cloud.map.instances_on("compute-2")] == ["web"]
    # The first step is durable before migrate() returns.
    assert (await stored_state(rig))[(ResourceType.INSTANCE, "worker")]["state"] == MIGRATING

    await op.done
    assert (inst.state, inst.host, inst.migrating_to) == (ACTIVE, "compute-2", None)
    assert cloud.map.used_vcpus("compute-1") == 2
    assert cloud.map.used_vcpus("compute-2") == 2
    [port] = cloud.map.ports_of("worker")
    assert port.host == "compute-2"
    kind = "live-migrate" if live else "migrate"
    published = events.drain()
    assert [(e.event_type, e.resource_id, e.reason) for e in published] == [
        ("instance.updated", "worker", kind),
        ("instance.updated", "worker", kind),
        ("port.updated", port.id, kind),
    ]
    assert published[0].changes == {"state": (ACTIVE, MIGRATING), "migrating_to": (None, "compute-2")}
    assert published[1].changes == {
        "state": (MIGRATING, ACTIVE),
        "host": ("compute-1", "compute-2"),
        "migrating_to": ("compute-2", None),
    }
    assert published[2].changes == {"host": ("compute-1", "compute-2")}
    assert await stored_state(rig) == map_state(cloud.map)


async def test_a_cold_migration_of_a_stopped_instance_leaves_it_stopped(cloud: EmbeddedCloud) -> None:
    await stop_instance(cloud, "worker")
    op = await cloud.migrate("worker", target="compute-4")
    inst = await op.done
    assert (inst.state, inst.host) == (SHUTOFF, "compute-4")


@pytest.mark.parametrize("state", [SHUTOFF, ERROR])
async def test_live_migration_needs_an_active_instance(cloud: EmbeddedCloud, state: InstanceState) -> None:
    if state is SHUTOFF:
        await stop_instance(cloud, "worker")
    else:
        await cloud.reset_state("worker", ERROR)
    with pytest.raises(Conflict, match=f"cannot live-migrate instance 'worker' in state {state}"):
        await cloud.migrate("worker", live=True)
    assert cloud.map.instance("worker").state is state


async def test_cold_migration_refuses_an_instance_in_error(cloud: EmbeddedCloud) -> None:
    await cloud.reset_state("worker", ERROR)
    with pytest.raises(Conflict, match="cannot migrate"):
        await cloud.migrate("worker")


async def test_migrating_to_the_current_host_is_refused(cloud: EmbeddedCloud) -> None:
    with pytest.raises(Conflict, match="already runs on compute-1"):
        await cloud.migrate("worker", target="compute-1")


async def test_a_scheduled_migration_never_picks_the_source_or_breaks_anti_affinity(cloud: EmbeddedCloud) -> None:
    op = await cloud.migrate("act")
    # compute-1 is the source, compute-3 runs the standby, compute-4 is emptier than compute-2.
    assert cloud.map.instance("act").migrating_to == "compute-4"
    await op.done
    with pytest.raises(NoValidHost, match="anti-affinity"):
        await cloud.migrate("stby", target="compute-4")


async def test_a_migration_target_that_is_not_up_is_refused(cloud: EmbeddedCloud) -> None:
    await cloud.set_host_forced_down("compute-2", True)
    with pytest.raises(NoValidHost, match="compute-2 is DOWN"):
        await cloud.migrate("worker", target="compute-2")
    assert cloud.map.instance("worker").state is ACTIVE


async def test_a_migration_whose_target_goes_down_ends_back_on_its_source(
    cloud: EmbeddedCloud, rig: Rig, events: Subscription
) -> None:
    op = await cloud.migrate("worker", target="compute-2", live=True)
    # The map changes as the call starts, so the migration's end sees it however slow the store is.
    await cloud.set_host_forced_down("compute-2", True, reason="fault")
    inst = await op.done
    assert (inst.state, inst.host, inst.migrating_to) == (ACTIVE, "compute-1", None)
    assert cloud.map.used_vcpus("compute-2") == 1
    assert cloud.map.used_vcpus("compute-1") == 3
    [port] = cloud.map.ports_of("worker")
    assert port.host == "compute-1"
    last = events.drain()[-1]
    assert (last.resource_id, last.reason) == ("worker", "live-migrate failed: the destination host went DOWN")
    assert last.changes == {"state": (MIGRATING, ACTIVE), "migrating_to": ("compute-2", None)}
    assert await stored_state(rig) == map_state(cloud.map)


async def test_reset_state_is_refused_while_migrating(cloud: EmbeddedCloud) -> None:
    op = await cloud.migrate("worker", target="compute-2")
    with pytest.raises(Conflict, match="is migrating"):
        await cloud.reset_state("worker", ERROR)
    await op.done


# -- evacuate ----------------------------------------------------------------------


async def test_evacuate_is_refused_while_the_host_is_up_or_in_maintenance(cloud: EmbeddedCloud) -> None:
    with pytest.raises(Conflict, match="compute-1 of instance 'worker' is UP"):
        await cloud.evacuate("worker")
    await cloud.set_host_enabled("compute-1", False)
    with pytest.raises(Conflict, match="is MAINTENANCE; evacuate needs it down"):
        await cloud.evacuate("worker")
    assert cloud.map.instance("worker").host == "compute-1"


@pytest.mark.parametrize("how", ["forced_down", "unreachable"])
async def test_evacuate_rebuilds_an_instance_of_a_failed_host_elsewhere_with_its_ports_up(
    cloud: EmbeddedCloud, rig: Rig, events: Subscription, how: str
) -> None:
    if how == "forced_down":
        await cloud.set_host_forced_down("compute-1", True, reason="fault")
    else:
        await cloud.set_host_reachable("compute-1", False, reason="heartbeat lost")
    assert cloud.map.host("compute-1").status in (HostStatus.DOWN, HostStatus.UNKNOWN)
    [port] = cloud.map.ports_of("act")
    await cloud.set_port_status(port.id, DataPlaneStatus.DOWN, reason="host down")
    events.drain()

    op = await cloud.evacuate("act")
    inst = cloud.map.instance("act")
    # Not compute-1 (failed) nor compute-3 (the standby's host): compute-4 is emptiest.
    assert (inst.state, inst.host) == (BUILD, "compute-4")
    assert (port.host, port.data_plane_status) == ("compute-4", DataPlaneStatus.ACTIVE)
    assert cloud.map.used_vcpus("compute-1") == 1
    await op.done
    assert inst.state is ACTIVE
    assert brief(events.drain()) == [
        ("instance.updated", "act", {"state": (ACTIVE, BUILD), "host": ("compute-1", "compute-4")}),
        (
            "port.updated",
            port.id,
            {"host": ("compute-1", "compute-4"), "data_plane_status": (DataPlaneStatus.DOWN, DataPlaneStatus.ACTIVE)},
        ),
        ("instance.updated", "act", {"state": (BUILD, ACTIVE)}),
    ]
    assert await stored_state(rig) == map_state(cloud.map)


async def test_evacuate_to_a_named_target_and_from_error(cloud: EmbeddedCloud) -> None:
    await cloud.set_host_forced_down("compute-1", True)
    await cloud.reset_state("worker", ERROR, reason="host down")
    op = await cloud.evacuate("worker", target="compute-2")
    inst = await op.done
    assert (inst.state, inst.host) == (ACTIVE, "compute-2")


async def test_evacuate_refuses_a_target_that_breaks_anti_affinity(cloud: EmbeddedCloud) -> None:
    await cloud.set_host_forced_down("compute-1", True)
    with pytest.raises(NoValidHost, match="anti-affinity"):
        await cloud.evacuate("act", target="compute-3")
    assert cloud.map.instance("act").host == "compute-1"


# -- reset-state, hosts and ports ---------------------------------------------------


async def test_reset_state_sets_active_or_error_with_the_reason(cloud: EmbeddedCloud, events: Subscription) -> None:
    await cloud.reset_state("web", ERROR, reason="host compute-2 down")
    await cloud.reset_state("web", ACTIVE)
    assert brief(events.drain()) == [
        ("instance.updated", "web", {"state": (ACTIVE, ERROR)}),
        ("instance.updated", "web", {"state": (ERROR, ACTIVE)}),
    ]


async def test_reset_state_publishes_its_reason(cloud: EmbeddedCloud, events: Subscription) -> None:
    await cloud.reset_state("web", ERROR, reason="host compute-2 down")
    await cloud.reset_state("web", ACTIVE)
    assert [e.reason for e in events.drain()] == ["host compute-2 down", "reset-state"]


@pytest.mark.parametrize("state", [SHUTOFF, BUILD, MIGRATING, InstanceState.DELETED])
async def test_reset_state_refuses_other_states(cloud: EmbeddedCloud, state: InstanceState) -> None:
    with pytest.raises(Conflict, match="reset-state sets only ACTIVE, ERROR"):
        await cloud.reset_state("web", state)
    assert cloud.map.instance("web").state is ACTIVE


async def test_resetting_to_the_current_state_publishes_nothing(cloud: EmbeddedCloud, events: Subscription) -> None:
    await cloud.reset_state("web", ACTIVE)
    assert events.drain() == []


async def test_disabling_and_enabling_a_host_is_reflected_in_its_status(
    cloud: EmbeddedCloud, rig: Rig, events: Subscription
) -> None:
    host = await cloud.set_host_enabled("compute-2", False, reason="firmware upgrade")
    assert (host.admin_state, host.status, host.disabled_reason) == (
        AdminState.DISABLED,
        HostStatus.MAINTENANCE,
        "firmware upgrade",
    )
    assert (await stored_state(rig))[(ResourceType.HOST, "compute-2")]["admin_state"] == AdminState.DISABLED
    await cloud.set_host_enabled("compute-2", True)
    assert (host.status, host.disabled_reason) == (HostStatus.UP, None)
    published = events.drain()
    assert brief(published) == [
        (
            "host.updated",
            "compute-2",
            {"admin_state": (AdminState.ENABLED, AdminState.DISABLED), "disabled_reason": (None, "firmware upgrade")},
        ),
        (
            "host.updated",
            "compute-2",
            {"admin_state": (AdminState.DISABLED, AdminState.ENABLED), "disabled_reason": ("firmware upgrade", None)},
        ),
    ]
    assert [e.reason for e in published] == ["firmware upgrade", "enable"]
    assert all(e.project is None for e in published)


async def test_forcing_a_host_down_wins_over_disabled_and_forcing_it_up_restores_it(
    cloud: EmbeddedCloud, events: Subscription
) -> None:
    await cloud.set_host_enabled("compute-3", False)
    host = await cloud.set_host_forced_down("compute-3", True, reason="fault")
    assert host.status is HostStatus.DOWN
    assert not host.schedulable
    await cloud.set_host_forced_down("compute-3", False)
    assert host.status is HostStatus.MAINTENANCE
    await cloud.set_host_enabled("compute-3", True)
    assert host.status is HostStatus.UP
    assert [(e.reason, dict(e.changes)) for e in events.drain()][1:3] == [
        ("fault", {"forced_down": (False, True)}),
        ("force-up", {"forced_down": (True, False)}),
    ]


async def test_host_operations_on_an_unknown_host_are_not_found(cloud: EmbeddedCloud) -> None:
    with pytest.raises(NotFound):
        await cloud.set_host_enabled("compute-9", False)
    with pytest.raises(NotFound):
        await cloud.set_host_forced_down("compute-9", True)


async def test_port_data_plane_status_is_set_and_published(cloud: EmbeddedCloud, events: Subscription) -> None:
    [port] = cloud.map.ports_of("web")
    await cloud.set_port_status(port.id, DataPlaneStatus.DOWN, reason="link down")
    assert port.data_plane_status is DataPlaneStatus.DOWN
    [event] = events.drain()
    assert (event.event_type, event.project, event.reason) == ("port.updated", "vnf-b", "link down")
    assert event.changes == {"data_plane_status": (DataPlaneStatus.ACTIVE, DataPlaneStatus.DOWN)}


# -- events, durability, restart -----------------------------------------------------


async def test_events_are_published_in_seq_order_and_match_the_stored_log(
    cloud: EmbeddedCloud, rig: Rig, events: Subscription
) -> None:
    ops = [await cloud.boot(name=f"vm-{n}", project="vnf-b") for n in range(3)]
    migration = await cloud.migrate("worker", target="compute-2")
    await asyncio.gather(
        cloud.set_host_enabled("compute-4", False),
        cloud.reset_state("web", ERROR),
        *(cloud.set_port_status(p.id, DataPlaneStatus.DOWN) for p in cloud.map.ports("vnf-a")),
    )
    await asyncio.gather(migration.done, *(op.done for op in ops))
    await rig.committer.flush()
    published = events.drain()
    seqs = [e.seq for e in published]
    assert seqs == list(range(1, len(published) + 1))
    logged = await rig.store.events(limit=1000)
    assert logged == published
    assert {e.action for e in published} == {EventAction.CREATED, EventAction.UPDATED}


async def test_a_restart_restores_the_map_and_settles_an_interrupted_migration(rig: Rig) -> None:
    await rig.cloud.migrate("worker", target="compute-2")
    await rig.cloud.aclose()  # the process stops mid-migration
    await rig.committer.flush()
    last_seq = (await rig.store.load()).last_seq

    committer = Committer(rig.store, rig.bus)
    committer.start()
    restarted = EmbeddedCloud(ResourceMap(), committer, clock, timings=TIMINGS)
    try:
        interrupted = restarted.restore(await rig.store.load())
        assert [i.id for i in interrupted] == ["worker"]
        assert restarted.map.used_vcpus("compute-2") == 2
        subscription = rig.bus.subscribe()
        await restarted.recover(interrupted)
        inst = restarted.map.instance("worker")
        assert (inst.state, inst.host, inst.migrating_to) == (ACTIVE, "compute-1", None)
        assert restarted.map.used_vcpus("compute-2") == 1
        [event] = subscription.drain()
        assert (event.seq, event.reason) == (last_seq + 1, "migration interrupted by a restart")
        subscription.close()
        assert await stored_state(rig) == map_state(restarted.map)
    finally:
        await restarted.aclose()
        await committer.stop()


async def test_drain_waits_for_every_operation_under_way(cloud: EmbeddedCloud) -> None:
    first = await cloud.migrate("worker", target="compute-2")
    second = await cloud.boot(name="x", project="vnf-b")
    await cloud.drain()
    assert first.done.done()
    assert second.done.done()
    assert cloud.map.instance("worker").state is ACTIVE


async def test_an_evacuated_stopped_instance_stays_stopped(cloud: EmbeddedCloud) -> None:
    await stop_instance(cloud, "worker")
    await cloud.set_host_forced_down("compute-1", True)
    op = await cloud.evacuate("worker")
    assert op.instance.state is BUILD
    inst = await op.done
    assert inst.state is SHUTOFF
    assert inst.host != "compute-1"


async def test_start_and_stop_refuse_the_wrong_state(cloud: EmbeddedCloud) -> None:
    with pytest.raises(Conflict, match="cannot start instance 'worker' in state ACTIVE"):
        await cloud.start("worker")
    await cloud.stop("worker")
    with pytest.raises(Conflict, match="cannot stop"):
        await cloud.stop("worker")
    assert (await cloud.start("worker")).state is ACTIVE


async def test_a_topology_that_cannot_be_placed_leaves_the_map_empty(store: SqlStore) -> None:
    committer = Committer(store, InProcessBus())
    committer.start()
    cloud = EmbeddedCloud(ResourceMap(), committer, clock, timings=TIMINGS)
    topology = Topology(
        hosts=[Host(HostName("h1"), vcpus=1)],
        projects=[Project(ProjectId("p"), "p")],
        instances=[
            Instance(InstanceId("a"), "a", ProjectId("p"), None),
            Instance(InstanceId("b"), "b", ProjectId("p"), None),
        ],
    )
    with pytest.raises(NoValidHost):
        await cloud.bootstrap(topology)
    await committer.stop()
    assert sum(cloud.map.counts().values()) == 0
    assert await store.is_empty()
