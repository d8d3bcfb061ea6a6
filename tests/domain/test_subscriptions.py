"""Who hears of an alarm: the matching rule of subscriptions."""

from datetime import UTC, datetime

import pytest

from vigil.domain.alarms import AckState, Alarm, AlarmId, AlarmKind, AlarmState, Lifecycle
from vigil.domain.faults import FaultId, Severity
from vigil.domain.subscriptions import (
    PayloadFormat,
    Subscription,
    SubscriptionFilter,
    SubscriptionId,
    matches,
    visible_resources,
)

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def alarm(kind: AlarmKind = AlarmKind.INSTANCE_DOWN, project: str | None = "vnf-a", **kw: object) -> Alarm:
    fields: dict[str, object] = {
        "id": AlarmId("a1"),
        "kind": kind,
        "project": project,
        "resource_type": "instance",
        "resource_id": "vnf-a",
        "severity": Severity.CRITICAL,
        "state": AlarmState.ACTIVE,
        "ack_state": AckState.UNACKNOWLEDGED,
        "fault": FaultId("f1"),
        "raised_at": NOW,
        "changed_at": NOW,
        "resource_ids": ["i1", "i2"],
    }
    fields.update(kw)
    return Alarm(**fields)  # type: ignore[arg-type]


def sub(project: str = "vnf-a", admin: bool = False, **filters: object) -> Subscription:
    return Subscription(
        id=SubscriptionId("s1"),
        project=project,
        admin=admin,
        callbacks=["http://127.0.0.1:1/"],
        format=PayloadFormat.AODH,
        created_at=NOW,
        filter=SubscriptionFilter(**filters),  # type: ignore[arg-type]
    )


def test_a_member_hears_only_its_own_projects_alarms() -> None:
    assert matches(sub("vnf-a"), alarm(), Lifecycle.RAISED)
    assert not matches(sub("vnf-b"), alarm(), Lifecycle.RAISED)
    assert not matches(sub("vnf-a"), alarm(AlarmKind.HOST_DOWN, project=None), Lifecycle.RAISED)


def test_an_admin_hears_every_alarm() -> None:
    assert matches(sub("admin", admin=True), alarm(), Lifecycle.RAISED)
    assert matches(sub("admin", admin=True), alarm(AlarmKind.HOST_DOWN, project=None), Lifecycle.RAISED)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"resource_ids": ["i2"]}, True),
        ({"resource_ids": ["vnf-a"]}, True),
        ({"resource_ids": ["i9"]}, False),
        ({"resource_types": ["instance"]}, True),
        ({"resource_types": ["host"]}, False),
        ({"event_types": ["instance.down"]}, True),
        ({"event_types": ["server_group.degraded"]}, False),
        ({"severities": [Severity.CRITICAL]}, True),
        ({"severities": [Severity.MINOR]}, False),
        ({"lifecycles": [Lifecycle.CLEARED]}, False),
    ],
)
def test_every_filter_narrows_what_matches(filters: dict[str, object], expected: bool) -> None:
    assert matches(sub(**filters), alarm(), Lifecycle.RAISED) is expected


def test_a_severity_filter_still_lets_the_clearing_of_a_matching_alarm_through() -> None:
    cleared = alarm(state=AlarmState.CLEARED)
    assert matches(sub(severities=[Severity.CRITICAL]), cleared, Lifecycle.CLEARED)


def test_a_subscriber_is_told_only_of_the_resources_it_asked_about() -> None:
    assert visible_resources(sub(resource_ids=["i2", "i7"]), alarm()) == ["i2"]
    assert visible_resources(sub(), alarm()) == ["i1", "i2"]
