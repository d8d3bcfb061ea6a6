"""Which committed changes the OpenStack driver pushes to Nova and Neutron (no services needed).

Only the inspector's fault actions are pushed: its units of work are named
after the report they apply. An admin's force-down, an instance an operator
reset, or a change that came from the VIM itself must not bounce back.
"""

from datetime import UTC, datetime

from vigil.domain.events import EventAction, ResourceEvent
from vigil.domain.ids import HostName, InstanceId, PortId, ProjectId
from vigil.domain.model import Host, Instance, Port, ResourceType
from vigil.domain.states import AdminState, DataPlaneStatus, InstanceState
from vigil.vim.openstack.push import FaultPusher
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def event(kind: ResourceType, ident: str, reason: str, **changes: tuple[object, object]) -> ResourceEvent:
    return ResourceEvent(1, NOW, kind, ident, EventAction.UPDATED, changes, reason=reason)


def pusher() -> FaultPusher:
    return FaultPusher(OpenStackSession(OpenStackAuth("http://127.0.0.1:9/v3", username="u", password="p")))


def test_only_the_inspectors_changes_are_pushed() -> None:
    batch = [
        event(ResourceType.HOST, "compute-1", "fault event", forced_down=(False, True)),
        event(ResourceType.INSTANCE, "i-1", "fault event", state=("ACTIVE", "ERROR")),
        event(ResourceType.PORT, "p-1", "fault event (replayed)", data_plane_status=("ACTIVE", "DOWN")),
        event(ResourceType.HOST, "compute-2", "held recovery released", forced_down=(True, False)),
        event(ResourceType.HOST, "compute-3", "force-down", forced_down=(False, True)),  # an admin's
        event(ResourceType.INSTANCE, "i-2", "reset-state", state=("ACTIVE", "ERROR")),  # an operator's
        event(ResourceType.INSTANCE, "i-3", "fault event", state=("ERROR", "ACTIVE")),  # not a fault action
        event(ResourceType.HOST, "compute-4", "fault event", reachable=(True, False)),  # behind a switch: no API
    ]
    assert [p.what for p in pusher().pushes_for(batch)] == [
        "host compute-1 forced_down=True",
        "server i-1 ERROR",
        "port p-1 data_plane_status=DOWN",
        "host compute-2 forced_down=False",
    ]


class FaultedMap:
    """compute-1 forced down by a fault with an ERROR instance and a DOWN port; compute-2 forced down by an admin."""

    def __init__(self) -> None:
        self._hosts = [
            Host(HostName("compute-1"), forced_down=True, admin_state=AdminState.DISABLED, disabled_reason="fault: x"),
            Host(HostName("compute-2"), forced_down=True, admin_state=AdminState.DISABLED, disabled_reason="firmware"),
        ]
        self._instances = {
            "compute-1": [
                Instance(InstanceId("i-1"), "a", ProjectId("p"), HostName("compute-1"), state=InstanceState.ERROR),
                Instance(InstanceId("i-2"), "b", ProjectId("p"), HostName("compute-1"), state=InstanceState.SHUTOFF),
            ],
            "compute-2": [Instance(InstanceId("i-3"), "c", ProjectId("p"), HostName("compute-2"))],
        }

    def hosts(self) -> list[Host]:
        return self._hosts

    def instances_on(self, host: str) -> list[Instance]:
        return self._instances[host]

    def ports_of(self, instance: str) -> list[Port]:
        status = DataPlaneStatus.DOWN if instance == "i-1" else DataPlaneStatus.ACTIVE
        return [Port(PortId(f"{instance}-port"), InstanceId(instance), ProjectId("p"), None, data_plane_status=status)]


def test_the_state_pushed_again_at_start_is_what_faults_left_in_the_map() -> None:
    assert [p.what for p in pusher().pushes_for_state(FaultedMap())] == [
        "host compute-1 forced_down=True",
        "server i-1 ERROR",
        "port i-1-port data_plane_status=DOWN",
    ]
