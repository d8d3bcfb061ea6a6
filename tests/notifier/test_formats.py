"""Payload formats: every rendered body is valid against its public spec, and
tenants never learn which host failed or who noticed."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from vigil.domain.alarms import AckState, Alarm, AlarmChange, AlarmId, AlarmKind, AlarmState, Lifecycle
from vigil.domain.deliveries import NotificationId, notification_id
from vigil.domain.faults import FaultId, Severity
from vigil.domain.subscriptions import PayloadFormat, Subscription, SubscriptionId
from vigil.notifier.formats import TENANT_DETAILS, render

SCHEMAS = Path(__file__).parent / "schemas"
RAISED_AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NOW = RAISED_AT + timedelta(milliseconds=3)

# Physical details that must never reach a tenant.
HOST, SWITCH, MONITOR, MONITOR_EVENT, CAUSE = "compute-7", "tor-3", "nic-monitor-x", "evt-0042", "carrier lost on eth1"


def schema(name: str) -> jsonschema.protocols.Validator:
    document = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    validator_class = jsonschema.validators.validator_for(document)
    validator_class.check_schema(document)
    return validator_class(document)  # type: ignore[no-any-return]


AODH = schema("aodh_alarm_webhook")
SOL003_ALARM = schema("sol003_alarm_notification")
SOL003_CLEARED = schema("sol003_alarm_cleared_notification")


# -- alarms as the inspector raises them --------------------------------------


def tenant_instances_down() -> Alarm:
    return Alarm(
        id=AlarmId("alarm-tenant-1"),
        kind=AlarmKind.INSTANCE_DOWN,
        project="vnf-a",
        resource_type="instance",
        resource_id="vnf-a",
        severity=Severity.CRITICAL,
        state=AlarmState.ACTIVE,
        ack_state=AckState.UNACKNOWLEDGED,
        fault=FaultId("fault-1"),
        raised_at=RAISED_AT,
        changed_at=RAISED_AT,
        reason="host failure affecting your instances",
        resource_ids=["vm-act", "vm-lb"],
        details={
            "description": "host failure affecting your instances",
            "host_status": "DOWN",
            "host_ids": ["9f1c0a"],
            "instance_state": "ERROR",
            # Nothing below may reach the tenant, should a later change put it here.
            "hostname": HOST,
            "monitor": MONITOR,
            "cause": CAUSE,
        },
    )


def tenant_group_degraded() -> Alarm:
    return Alarm(
        id=AlarmId("alarm-group-1"),
        kind=AlarmKind.GROUP_DEGRADED,
        project="vnf-a",
        resource_type="server_group",
        resource_id="group-ha",
        severity=Severity.MAJOR,
        state=AlarmState.ACTIVE,
        ack_state=AckState.UNACKNOWLEDGED,
        fault=FaultId("fault-1"),
        raised_at=RAISED_AT,
        changed_at=RAISED_AT,
        reason="1 of 2 members of server group vnf-a-ha are down",
        resource_ids=["vm-act"],
        details={"threshold": 1, "members": 2},
    )


def admin_host_down() -> Alarm:
    return Alarm(
        id=AlarmId("alarm-admin-1"),
        kind=AlarmKind.HOST_DOWN,
        project=None,
        resource_type="host",
        resource_id=HOST,
        severity=Severity.CRITICAL,
        state=AlarmState.ACTIVE,
        ack_state=AckState.UNACKNOWLEDGED,
        fault=FaultId("fault-1"),
        raised_at=RAISED_AT,
        changed_at=RAISED_AT,
        reason=f"host {HOST} down: compute.host.down from {MONITOR}",
        resource_ids=["vm-act", "vm-lb", "vm-other"],
        details={
            "event_type": "compute.host.down",
            "monitor": MONITOR,
            "monitor_event_id": MONITOR_EVENT,
            "cause": CAUSE,
            "hosts": [HOST],
            "host_status": ["DOWN"],
        },
    )


def admin_switch_down() -> Alarm:
    return Alarm(
        id=AlarmId("alarm-admin-2"),
        kind=AlarmKind.SWITCH_DOWN,
        project=None,
        resource_type="switch",
        resource_id=SWITCH,
        severity=Severity.CRITICAL,
        state=AlarmState.ACTIVE,
        ack_state=AckState.UNACKNOWLEDGED,
        fault=FaultId("fault-2"),
        raised_at=RAISED_AT,
        changed_at=RAISED_AT,
        reason=f"switch {SWITCH} down: network.switch.down from {MONITOR}",
        resource_ids=[HOST, "compute-8"],
        details={"event_type": "network.switch.down", "monitor": MONITOR, "monitor_event_id": MONITOR_EVENT},
    )


def admin_host_degraded() -> Alarm:
    return Alarm(
        id=AlarmId("alarm-admin-3"),
        kind=AlarmKind.HOST_DEGRADED,
        project=None,
        resource_type="host",
        resource_id=HOST,
        severity=Severity.WARNING,
        state=AlarmState.ACTIVE,
        ack_state=AckState.UNACKNOWLEDGED,
        fault=FaultId(f"degraded:{HOST}"),
        raised_at=RAISED_AT,
        changed_at=RAISED_AT,
        reason=f"host {HOST} degraded: link/eth1 (1 of 2 failures)",
        details={"failures": ["link/eth1"], "threshold": 2, "monitor": MONITOR},
    )


TENANT_ALARMS = [tenant_instances_down, tenant_group_degraded]
ADMIN_ALARMS = [admin_host_down, admin_switch_down, admin_host_degraded]


def change(alarm: Alarm, lifecycle: Lifecycle) -> AlarmChange:
    """The alarm as it stands right after ``lifecycle``."""
    if lifecycle is Lifecycle.UPDATED:
        alarm.update(RAISED_AT + timedelta(seconds=1), severity=Severity.MAJOR, resource_ids=alarm.resource_ids[:1])
        return AlarmChange(lifecycle, alarm, previous_severity=Severity.CRITICAL)
    if lifecycle is Lifecycle.CLEARED:
        alarm.clear(RAISED_AT + timedelta(seconds=2))
    return AlarmChange(lifecycle, alarm)


def subscription(fmt: PayloadFormat, *, admin: bool = False, name: str = "") -> Subscription:
    return Subscription(
        id=SubscriptionId("sub-1"),
        project="admin" if admin else "vnf-a",
        admin=admin,
        callbacks=["http://127.0.0.1:9/hook"],
        format=fmt,
        created_at=RAISED_AT - timedelta(days=1),
        name=name,
    )


def rendered(
    fmt: PayloadFormat, make: Callable[[], Alarm], lifecycle: Lifecycle, *, resource_ids: list[str] | None = None
) -> tuple[dict[str, Any], AlarmChange, NotificationId]:
    alarm_change = change(make(), lifecycle)
    alarm = alarm_change.alarm
    nid = notification_id(alarm.id, alarm.version, "sub-1")
    visible = list(alarm.resource_ids) if resource_ids is None else resource_ids
    sub = subscription(fmt, admin=alarm.project is None)
    body = render(sub, alarm_change, nid, resource_ids=visible, now=NOW)
    assert isinstance(body, bytes)
    return json.loads(body), alarm_change, nid


def traits(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, _, value in body["reason_data"]["event"]["traits"]}


def rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


ALL_ALARMS = pytest.mark.parametrize("make", TENANT_ALARMS + ADMIN_ALARMS, ids=lambda f: f.__name__)
LIFECYCLES = pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=str)


# -- valid against the specs --------------------------------------------------


@ALL_ALARMS
@LIFECYCLES
def test_every_aodh_body_is_a_valid_aodh_event_alarm_webhook(make: Callable[[], Alarm], lifecycle: Lifecycle) -> None:
    body, _, _ = rendered(PayloadFormat.AODH, make, lifecycle)
    AODH.validate(body)
    rfc3339(body["reason_data"]["event"]["generated"])


@ALL_ALARMS
@LIFECYCLES
def test_every_sol003_body_is_a_valid_alarm_or_alarm_cleared_notification(
    make: Callable[[], Alarm], lifecycle: Lifecycle
) -> None:
    body, _, _ = rendered(PayloadFormat.SOL003, make, lifecycle)
    if lifecycle is Lifecycle.CLEARED:
        SOL003_CLEARED.validate(body)
        stamps = [body["timeStamp"], body["alarmClearedTime"]]
    else:
        SOL003_ALARM.validate(body)
        alarm = body["alarm"]
        stamps = [body["timeStamp"], alarm["alarmRaisedTime"], alarm["alarmChangedTime"], alarm["eventTime"]]
    for stamp in stamps:
        rfc3339(stamp)


def test_the_schemas_catch_a_missing_required_attribute() -> None:
    body, _, _ = rendered(PayloadFormat.SOL003, tenant_instances_down, Lifecycle.RAISED)
    del body["alarm"]["probableCause"]
    with pytest.raises(jsonschema.ValidationError, match="probableCause"):
        SOL003_ALARM.validate(body)
    aodh, _, _ = rendered(PayloadFormat.AODH, tenant_instances_down, Lifecycle.RAISED)
    aodh["severity"] = "CRITICAL"
    with pytest.raises(jsonschema.ValidationError):
        AODH.validate(aodh)


# -- tenants see no physical detail --------------------------------------------


@pytest.mark.parametrize("fmt", list(PayloadFormat), ids=str)
@pytest.mark.parametrize("make", TENANT_ALARMS, ids=lambda f: f.__name__)
@LIFECYCLES
def test_a_tenant_payload_names_no_host_switch_monitor_or_cause(
    fmt: PayloadFormat, make: Callable[[], Alarm], lifecycle: Lifecycle
) -> None:
    body, _, _ = rendered(fmt, make, lifecycle)
    text = json.dumps(body)
    for secret in (HOST, SWITCH, MONITOR, MONITOR_EVENT, CAUSE, "hostname", "monitor"):
        assert secret not in text


def test_a_tenant_sees_only_the_listed_details() -> None:
    body, _, _ = rendered(PayloadFormat.AODH, tenant_instances_down, Lifecycle.RAISED)
    names = set(traits(body))
    assert {"host_status", "host_ids", "instance_state"} <= names
    assert names.isdisjoint({"hostname", "monitor", "cause"})
    assert {"hostname", "monitor", "cause"}.isdisjoint(TENANT_DETAILS)


@pytest.mark.parametrize("fmt", list(PayloadFormat), ids=str)
def test_an_admin_payload_names_the_host_the_monitor_and_the_cause(fmt: PayloadFormat) -> None:
    body, _, _ = rendered(fmt, admin_host_down, Lifecycle.RAISED)
    text = json.dumps(body)
    for detail in (HOST, MONITOR, MONITOR_EVENT, CAUSE):
        assert detail in text


# -- the Aodh shape ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifecycle", "previous", "current"),
    [(Lifecycle.RAISED, "ok", "alarm"), (Lifecycle.UPDATED, "alarm", "alarm"), (Lifecycle.CLEARED, "alarm", "ok")],
)
def test_aodh_states_follow_the_alarm_lifecycle(lifecycle: Lifecycle, previous: str, current: str) -> None:
    body, _, _ = rendered(PayloadFormat.AODH, tenant_instances_down, lifecycle)
    assert (body["previous"], body["current"]) == (previous, current)
    assert traits(body)["lifecycle"] == str(lifecycle)


@pytest.mark.parametrize(
    ("make", "severity"),
    [(tenant_instances_down, "critical"), (tenant_group_degraded, "moderate"), (admin_host_degraded, "low")],
)
def test_aodh_severity_is_lower_case_low_moderate_or_critical(make: Callable[[], Alarm], severity: str) -> None:
    body, _, _ = rendered(PayloadFormat.AODH, make, Lifecycle.RAISED)
    assert body["severity"] == severity


def test_the_aodh_alarm_is_the_subscription() -> None:
    alarm_change = change(tenant_instances_down(), Lifecycle.RAISED)
    nid = notification_id(alarm_change.alarm.id, 1, "sub-1")
    named = json.loads(
        render(subscription(PayloadFormat.AODH, name="vnf-a-ha"), alarm_change, nid, resource_ids=["vm-act"], now=NOW)
    )
    unnamed = json.loads(render(subscription(PayloadFormat.AODH), alarm_change, nid, resource_ids=["vm-act"], now=NOW))
    assert (named["alarm_id"], named["alarm_name"]) == ("sub-1", "vnf-a-ha")
    assert (unnamed["alarm_id"], unnamed["alarm_name"]) == ("sub-1", "sub-1")


def test_an_aodh_instance_alarm_reads_as_nova_instances_in_error() -> None:
    body, alarm_change, nid = rendered(PayloadFormat.AODH, tenant_instances_down, Lifecycle.RAISED)
    event = body["reason_data"]["event"]
    assert event["event_type"] == "compute.instance.update"
    found = traits(body)
    assert found["instance_ids"] == "vm-act,vm-lb"
    assert "instance_id" not in found  # only when there is exactly one
    assert (found["state"], found["host_status"], found["project_id"]) == ("error", "DOWN", "vnf-a")
    assert found["vigil_alarm_id"] == alarm_change.alarm.id
    assert found["vigil_notification_id"] == nid
    assert found["vigil_fault_id"] == "fault-1"
    assert found["vigil_alarm_version"] == 1
    assert body["reason"] == "host failure affecting your instances"


@pytest.mark.parametrize("make", [tenant_instances_down, admin_host_down], ids=lambda f: f.__name__)
def test_a_cleared_aodh_alarm_does_not_repeat_the_raised_host_status(make: Callable[[], Alarm]) -> None:
    body, _, _ = rendered(PayloadFormat.AODH, make, Lifecycle.CLEARED)
    found = traits(body)
    assert "host_status" not in found
    assert "state" not in found
    assert found["lifecycle"] == "cleared"
    assert body["reason"].startswith("cleared: ")


def test_aodh_traits_are_typed_triples() -> None:
    body, _, _ = rendered(PayloadFormat.AODH, admin_host_degraded, Lifecycle.RAISED)
    typed = {name: dtype for name, dtype, _ in body["reason_data"]["event"]["traits"]}
    assert typed["threshold"] == 2  # integer
    assert typed["hostname"] == 1  # string
    assert traits(body)["failures"] == "link/eth1"


def test_an_admin_host_alarm_reads_as_a_host_down_event() -> None:
    body, _, _ = rendered(PayloadFormat.AODH, admin_host_down, Lifecycle.RAISED)
    assert body["reason_data"]["event"]["event_type"] == "compute.host.down"
    found = traits(body)
    assert (found["hostname"], found["monitor"], found["cause"]) == (HOST, MONITOR, CAUSE)
    assert found["fault_event_type"] == "compute.host.down"
    assert "project_id" not in found


# -- the SOL 003 shape -----------------------------------------------------------


def test_a_tenant_sol003_alarm_is_about_the_vnf_and_its_vnfc_instances() -> None:
    body, alarm_change, nid = rendered(PayloadFormat.SOL003, tenant_instances_down, Lifecycle.RAISED)
    alarm = body["alarm"]
    assert (body["id"], body["subscriptionId"]) == (nid, "sub-1")
    assert alarm["id"] == alarm_change.alarm.id
    assert alarm["managedObjectId"] == "vnf-a"
    assert alarm["vnfcInstanceIds"] == ["vm-act", "vm-lb"]
    assert alarm["rootCauseFaultyResource"]["faultyResource"]["resourceId"] == "vm-act"
    assert alarm["rootCauseFaultyResource"]["faultyResourceType"] == "COMPUTE"
    assert alarm["isRootCause"] is False
    assert (alarm["perceivedSeverity"], alarm["eventType"], alarm["faultType"]) == (
        "CRITICAL",
        "EQUIPMENT_ALARM",
        "instance.down",
    )
    assert alarm["faultDetails"][0] == "host failure affecting your instances"
    assert "host_status: DOWN" in alarm["faultDetails"]
    assert alarm["_links"]["self"]["href"] == f"/v1/alarms/{alarm['id']}"
    assert body["_links"]["subscription"]["href"] == "/v1/subscriptions/sub-1"


def test_an_admin_sol003_alarm_is_the_root_cause_on_the_host() -> None:
    body, _, _ = rendered(PayloadFormat.SOL003, admin_host_down, Lifecycle.RAISED)
    alarm = body["alarm"]
    assert alarm["managedObjectId"] == HOST
    assert alarm["rootCauseFaultyResource"]["faultyResource"]["resourceId"] == HOST
    assert alarm["isRootCause"] is True
    assert alarm["probableCause"] == CAUSE
    assert alarm["vnfcInstanceIds"] == ["vm-act", "vm-lb", "vm-other"]


def test_a_switch_alarm_is_a_network_fault_listing_its_hosts_as_details() -> None:
    body, _, _ = rendered(PayloadFormat.SOL003, admin_switch_down, Lifecycle.RAISED)
    alarm = body["alarm"]
    assert alarm["rootCauseFaultyResource"]["faultyResourceType"] == "NETWORK"
    assert alarm["eventType"] == "COMMUNICATIONS_ALARM"
    assert "vnfcInstanceIds" not in alarm  # hosts are not VNFC instances
    assert f"resource_ids: {HOST}, compute-8" in alarm["faultDetails"]


def test_an_updated_sol003_alarm_carries_the_new_severity_and_change_time() -> None:
    body, alarm_change, _ = rendered(PayloadFormat.SOL003, tenant_instances_down, Lifecycle.UPDATED)
    alarm = body["alarm"]
    assert body["notificationType"] == "AlarmNotification"
    assert alarm["perceivedSeverity"] == "MAJOR"
    assert rfc3339(alarm["alarmChangedTime"]) == alarm_change.alarm.changed_at
    assert rfc3339(alarm["alarmRaisedTime"]) == RAISED_AT


def test_a_cleared_alarm_is_an_alarm_cleared_notification_linking_the_alarm() -> None:
    body, alarm_change, nid = rendered(PayloadFormat.SOL003, tenant_instances_down, Lifecycle.CLEARED)
    assert body["notificationType"] == "AlarmClearedNotification"
    assert (body["id"], body["alarmId"]) == (nid, alarm_change.alarm.id)
    assert rfc3339(body["alarmClearedTime"]) == alarm_change.alarm.cleared_at
    assert rfc3339(body["timeStamp"]) == NOW
    assert body["_links"]["alarm"]["href"] == f"/v1/alarms/{alarm_change.alarm.id}"


def test_links_are_absolute_under_an_api_root() -> None:
    alarm_change = change(tenant_instances_down(), Lifecycle.RAISED)
    nid = notification_id(alarm_change.alarm.id, 1, "sub-1")
    sub = subscription(PayloadFormat.SOL003)
    body = json.loads(
        render(sub, alarm_change, nid, resource_ids=["vm-act"], now=NOW, api_root="https://vigil.example/")
    )
    assert body["_links"]["subscription"]["href"] == "https://vigil.example/v1/subscriptions/sub-1"
    assert body["alarm"]["_links"]["self"]["href"] == f"https://vigil.example/v1/alarms/{alarm_change.alarm.id}"


# -- what every format shares -----------------------------------------------------


@pytest.mark.parametrize("fmt", list(PayloadFormat), ids=str)
def test_only_the_resources_the_subscription_may_see_are_listed(fmt: PayloadFormat) -> None:
    body, _, _ = rendered(fmt, tenant_instances_down, Lifecycle.RAISED, resource_ids=["vm-act"])
    assert "vm-lb" not in json.dumps(body)
    assert "vm-act" in json.dumps(body)


@pytest.mark.parametrize("fmt", list(PayloadFormat), ids=str)
@LIFECYCLES
def test_the_same_change_renders_the_same_bytes_with_the_same_notification_id(
    fmt: PayloadFormat, lifecycle: Lifecycle
) -> None:
    alarm_change = change(admin_host_down(), lifecycle)
    alarm = alarm_change.alarm
    nid = notification_id(alarm.id, alarm.version, "sub-1")
    assert nid == notification_id(alarm.id, alarm.version, "sub-1")
    sub = subscription(fmt, admin=True)
    first = render(sub, alarm_change, nid, resource_ids=list(alarm.resource_ids), now=NOW)
    again = render(sub, alarm_change, nid, resource_ids=list(alarm.resource_ids), now=NOW)
    assert first == again
    assert nid in first.decode()


def test_each_alarm_version_is_a_new_notification_and_a_new_aodh_event() -> None:
    raised, _, first = rendered(PayloadFormat.AODH, tenant_instances_down, Lifecycle.RAISED)
    updated, _, second = rendered(PayloadFormat.AODH, tenant_instances_down, Lifecycle.UPDATED)
    assert first != second
    assert raised["reason_data"]["event"]["message_id"] != updated["reason_data"]["event"]["message_id"]
    assert notification_id("alarm-tenant-1", 1, "sub-1") != notification_id("alarm-tenant-1", 1, "sub-2")


def test_a_naive_time_is_taken_as_utc() -> None:
    alarm = tenant_instances_down()
    alarm.raised_at = alarm.changed_at = datetime(2026, 3, 1, 12, 0, 0)
    nid = notification_id(alarm.id, 1, "sub-1")
    body = json.loads(
        render(
            subscription(PayloadFormat.SOL003),
            AlarmChange(Lifecycle.RAISED, alarm),
            nid,
            resource_ids=["vm-act"],
            now=NOW,
        )
    )
    assert body["alarm"]["alarmRaisedTime"] == "2026-03-01T12:00:00.000000Z"


def test_an_unknown_format_is_refused() -> None:
    sub = subscription(PayloadFormat.AODH)
    sub.format = "snmp"  # type: ignore[assignment]
    alarm_change = change(tenant_instances_down(), Lifecycle.RAISED)
    with pytest.raises(ValueError, match="snmp"):
        render(sub, alarm_change, NotificationId("n"), resource_ids=[], now=NOW)
