"""Nova's versioned notifications parsed into Vigil's changes, on real bodies captured from Nova 34.

The fixtures in ``tests/openstack/notifications`` came off the stack's
``versioned_notifications.info`` queue as they were (see their README), so
these tests check the parser against what Nova really sends, including the
payloads whose host field is stale, without any service running.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from vigil.domain.states import InstanceState
from vigil.vim.openstack.inventory import instance_state
from vigil.vim.openstack.notifications import (
    InstanceChanged,
    InstanceCreated,
    InstanceDeleted,
    InstanceMoved,
    MalformedNotification,
    ServiceChanged,
    api_status,
    parse,
    unwrap,
)

FIXTURES = Path(__file__).parent.parent / "openstack" / "notifications"


def body(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def server_id() -> str:
    data: dict[str, Any] = json.loads(json.loads(body("boot.instance.create.end"))["oslo.message"])
    return str(data["payload"]["nova_object.data"]["uuid"])


def test_every_fixture_is_an_oslo_envelope_that_parses() -> None:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert len(names) >= 20
    for name in names:
        envelope = unwrap(body(name))
        assert name.split(".", 1)[1].startswith(envelope.event_type), name
        change = parse(body(name).encode())
        assert (change is None) == name.startswith("other."), name


def test_boot() -> None:
    created = parse(body("boot.instance.create.end"))
    assert isinstance(created, InstanceCreated)
    assert (created.host, created.name, created.vcpus) == ("compute-1", "cap-1", 2)
    assert created.metadata == {"role": "ACT"}
    assert created.state is InstanceState.ACTIVE
    assert created.fault is None
    assert len(created.project) == 32
    update = parse(body("boot.instance.update.active"))
    assert isinstance(update, InstanceChanged)
    assert (update.host, update.state, update.vm_state, update.task_state) == (
        "compute-1",
        InstanceState.ACTIVE,
        "active",
        None,
    )


def test_power_off_on() -> None:
    stopped = parse(body("stop.instance.power_off.end"))
    assert isinstance(stopped, InstanceChanged)
    assert (stopped.state, stopped.host) == (InstanceState.SHUTOFF, "compute-1")
    started = parse(body("start.instance.power_on.end"))
    assert isinstance(started, InstanceChanged)
    assert started.state is InstanceState.ACTIVE


def test_live_migration_names_the_target_early_and_the_new_host_at_the_end() -> None:
    migrating = parse(body("live_migrate.instance.update.migrating"))
    assert isinstance(migrating, InstanceChanged)
    assert (migrating.state, migrating.task_state, migrating.host) == (
        InstanceState.MIGRATING,
        "migrating",
        "compute-1",
    )
    pre = parse(body("live_migrate.instance.live_migration_pre.end"))
    assert isinstance(pre, InstanceChanged)
    assert (pre.host, pre.migrating_to) == ("compute-1", "compute-2")
    dest = parse(body("live_migrate.instance.live_migration_post_dest.end"))
    assert isinstance(dest, InstanceMoved)
    assert (dest.host, dest.state, dest.task_state) == ("compute-2", InstanceState.ACTIVE, None)
    post = parse(body("live_migrate.instance.live_migration_post.end"))  # the source's: its payload is stale
    assert isinstance(post, InstanceMoved)
    assert (post.host, post.source, post.state) == (None, "compute-1", InstanceState.ACTIVE)
    update = parse(body("live_migrate.instance.update.new_host"))
    assert isinstance(update, InstanceChanged)
    assert (update.host, update.state) == ("compute-2", InstanceState.ACTIVE)


def test_cold_migration_and_confirm() -> None:
    prep = parse(body("cold_migrate.instance.resize_prep.end"))
    assert isinstance(prep, InstanceChanged)
    assert (prep.host, prep.migrating_to, prep.state) == ("compute-2", "compute-3", InstanceState.MIGRATING)
    resized = parse(body("cold_migrate.instance.resize.end"))
    assert isinstance(resized, InstanceMoved)
    assert (resized.host, resized.source, resized.state) == ("compute-3", "compute-2", InstanceState.MIGRATING)
    finished = parse(body("cold_migrate.instance.resize_finish.end"))
    assert isinstance(finished, InstanceMoved)
    assert (finished.host, finished.state) == ("compute-3", InstanceState.MIGRATING)  # VERIFY_RESIZE
    confirmed = parse(body("confirm.instance.resize_confirm.end"))
    assert isinstance(confirmed, InstanceMoved)
    assert (confirmed.host, confirmed.source, confirmed.state) == ("compute-3", "compute-2", InstanceState.ACTIVE)


def test_service_updates() -> None:
    disabled = parse(body("disable.service.update"))
    assert isinstance(disabled, ServiceChanged)
    assert (disabled.host, disabled.binary, disabled.disabled, disabled.forced_down) == (
        "compute-3",
        "nova-compute",
        True,
        False,
    )
    assert disabled.disabled_reason == "cap maintenance"
    enabled = parse(body("enable.service.update"))
    assert isinstance(enabled, ServiceChanged)
    assert (enabled.disabled, enabled.forced_down) == (False, False)
    down = parse(body("force_down.service.update"))
    assert isinstance(down, ServiceChanged)
    assert (down.disabled, down.forced_down) == (False, True)
    assert down.uuid
    assert down.last_seen_up


def test_reset_state_and_evacuation() -> None:
    error = parse(body("reset_state.instance.update.error"))
    assert isinstance(error, InstanceChanged)
    assert (error.state, error.host) == (InstanceState.ERROR, "compute-3")
    accepted = parse(body("evacuate.instance.evacuate"))  # from nova-api: still the failed host, no target yet
    assert isinstance(accepted, InstanceChanged)
    assert (accepted.host, accepted.task_state, accepted.migrating_to) == ("compute-3", "rebuilding", None)
    assert accepted.state is InstanceState.BUILD  # Nova's REBUILD: built again, as the embedded cloud's evacuation
    scheduled = parse(body("evacuate.instance.rebuild_scheduled"))
    assert isinstance(scheduled, InstanceChanged)
    assert scheduled.migrating_to == "compute-2"
    assert scheduled.state is InstanceState.BUILD
    rebuilt = parse(body("evacuate.instance.rebuild.end"))  # the payload names the failed host, the publisher the new
    assert isinstance(rebuilt, InstanceMoved)
    assert (rebuilt.host, rebuilt.source, rebuilt.state) == ("compute-2", "compute-3", InstanceState.ACTIVE)
    update = parse(body("evacuate.instance.update.new_host"))
    assert isinstance(update, InstanceChanged)
    assert update.host == "compute-2"


def test_delete() -> None:
    shutdown = parse(body("delete.instance.shutdown.end"))
    assert isinstance(shutdown, InstanceChanged)
    assert shutdown.task_state == "deleting"
    for name in ("delete.instance.update.deleted", "delete.instance.delete.end"):
        deleted = parse(body(name))
        assert isinstance(deleted, InstanceDeleted)
        assert deleted.host == "compute-2"
        assert deleted.id == server_id()


def test_no_valid_host_leaves_the_server_in_error_with_no_host() -> None:
    failed = parse(body("boot_no_valid_host.instance.update.error"))
    assert isinstance(failed, InstanceChanged)
    assert (failed.host, failed.state) == (None, InstanceState.ERROR)


def test_create_error_is_a_created_server_in_error_with_its_fault() -> None:
    """Not captured (the fake driver does not fail a build on a compute); built from the create.end body."""
    envelope = json.loads(body("boot.instance.create.end"))
    message = json.loads(envelope["oslo.message"])
    message["event_type"] = "instance.create.error"
    message["payload"]["nova_object.data"]["fault"] = {
        "nova_object.data": {"exception": "BuildAbortException", "exception_message": "spawn failed"}
    }
    failed = parse(json.dumps({**envelope, "oslo.message": json.dumps(message)}))
    assert isinstance(failed, InstanceCreated)
    assert (failed.state, failed.fault) == (InstanceState.ERROR, "spawn failed")


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff\xfe",
        "not json",
        "[1, 2]",
        json.dumps({"oslo.version": "2.0", "oslo.message": 5}),
        json.dumps({"oslo.version": "2.0", "oslo.message": "{"}),
        json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps({"payload": {}})}),
        json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps({"event_type": "service.update"})}),
        json.dumps({"oslo.message": json.dumps({"event_type": "service.update", "payload": {"x": 1}})}),
        json.dumps(
            {
                "oslo.message": json.dumps(
                    {"event_type": "service.update", "payload": {"nova_object.data": {"host": "h"}}}
                )
            }
        ),
        json.dumps(
            {
                "oslo.message": json.dumps(
                    {"event_type": "instance.update", "payload": {"nova_object.data": {"uuid": 7, "tenant_id": "p"}}}
                )
            }
        ),
    ],
)
def test_malformed_bodies_raise_a_clear_exception(bad: str | bytes) -> None:
    with pytest.raises(MalformedNotification):
        parse(bad)


def test_unknown_event_types_are_ignored_even_without_nova_object_data() -> None:
    assert parse(json.dumps({"oslo.message": json.dumps({"event_type": "aggregate.create", "payload": {}})})) is None


def test_novas_statuses_in_vigils_states() -> None:
    """A rebuild (Nova's REBUILD, an evacuation's or a tenant's) is BUILD, as the embedded cloud's evacuation;
    it was ACTIVE, so a server being rebuilt off a failed host looked running there."""
    assert instance_state("REBUILD") is InstanceState.BUILD
    assert instance_state("VERIFY_RESIZE") is InstanceState.MIGRATING
    assert instance_state("shutoff") is InstanceState.SHUTOFF
    assert instance_state("ERROR") is InstanceState.ERROR


def test_api_status_follows_novas_table() -> None:
    assert api_status("active", "migrating") == "MIGRATING"
    assert api_status("error", "rebuilding") == "REBUILD"
    assert api_status("resized", None) == "VERIFY_RESIZE"
    assert api_status("stopped", "resize_prep") == "RESIZE"
    assert api_status("building", "spawning") == "BUILD"
