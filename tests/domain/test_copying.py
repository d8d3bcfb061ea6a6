"""Snapshots: later changes to a resource or record, or to its lists and dicts, do not reach them."""

import dataclasses
from datetime import UTC, datetime

from vigil.domain.copying import snapshot
from vigil.domain.faults import Fault, FaultId, FaultState, Severity
from vigil.domain.ids import HostName, InstanceId, ProjectId
from vigil.domain.model import Host, Instance
from vigil.domain.subscriptions import PayloadFormat, Subscription, SubscriptionFilter, SubscriptionId

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_snapshot_is_equal_but_not_the_same_object() -> None:
    host = Host(HostName("h1"), vcpus=4)
    copy = snapshot(host)
    assert copy == host
    assert copy is not host
    host.forced_down = True
    assert copy.forced_down is False


def test_a_snapshot_keeps_its_own_containers() -> None:
    inst = Instance(InstanceId("i1"), "vm", ProjectId("p"), HostName("h1"), metadata={"role": "ACT"})
    copy = snapshot(inst)
    inst.metadata["role"] = "STBY"
    assert copy.metadata == {"role": "ACT"}

    fault = Fault(FaultId("f"), "compute.host.down", "host", "h1", Severity.CRITICAL, FaultState.ACTIVE, NOW)
    fault.events.append("e1")
    fault.checkpoints["T01"] = 1.0
    frozen = snapshot(fault)
    fault.events.append("e2")
    fault.checkpoints["T02"] = 2.0
    assert frozen.events == ["e1"]
    assert frozen.checkpoints == {"T01": 1.0}


def test_a_nested_dataclass_is_copied_too() -> None:
    sub = Subscription(
        SubscriptionId("s"),
        "p",
        False,
        ["http://127.0.0.1:1/"],
        PayloadFormat.AODH,
        NOW,
        filter=SubscriptionFilter(resource_ids=["i1"]),
    )
    copy = snapshot(sub)
    sub.filter.resource_ids.append("i2")
    sub.callbacks.append("http://127.0.0.1:2/")
    assert copy.filter.resource_ids == ["i1"]
    assert copy.callbacks == ["http://127.0.0.1:1/"]
    assert dataclasses.asdict(copy)["filter"] == {
        "resource_ids": ["i1"],
        "resource_types": [],
        "event_types": [],
        "severities": [],
        "lifecycles": [],
    }
