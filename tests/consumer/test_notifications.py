"""Reading notifications in either payload format (pure)."""

import pytest

from vigil.consumer.notifications import BadNotification, parse_maintenance, parse_notification

AODH = {
    "alarm_name": "instance.down vnf-a",
    "alarm_id": "a1",
    "severity": "critical",
    "previous": "ok",
    "current": "alarm",
    "reason": "host failure affecting your instances",
    "reason_data": {
        "type": "event",
        "event": {
            "event_type": "instance.down",
            "traits": [["project_id", 1, "vnf-a"], ["resource_ids", 1, '["vm-1", "vm-2"]']],
        },
    },
}

SOL003_RAISED = {
    "id": "n1",
    "notificationType": "AlarmNotification",
    "subscriptionId": "s1",
    "timeStamp": "2026-01-01T00:00:00Z",
    "alarm": {"id": "a1", "vnfcInstanceIds": ["vm-1", "vm-2"], "perceivedSeverity": "CRITICAL"},
}

SOL003_CLEARED = {
    "id": "n2",
    "notificationType": "AlarmClearedNotification",
    "subscriptionId": "s1",
    "timeStamp": "2026-01-01T00:00:01Z",
    "alarmId": "a1",
    "alarmClearedTime": "2026-01-01T00:00:01Z",
}


def test_an_aodh_alarm_names_its_instances_and_takes_the_id_from_the_header() -> None:
    note = parse_notification(AODH, {"X-Vigil-Notification-Id": "nid-1"}, received_at=5.0, path="/notify")
    assert (note.id, note.format, note.kind, note.alarm_id) == ("nid-1", "aodh", "instance.down", "a1")
    assert note.resource_ids == ("vm-1", "vm-2")
    assert not note.cleared
    assert note.received_at == 5.0


def test_an_aodh_alarm_back_to_ok_is_a_clearing() -> None:
    note = parse_notification({**AODH, "previous": "alarm", "current": "ok"}, {}, received_at=0)
    assert note.cleared
    assert note.id == "a1"  # no header: the alarm id stands in


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["vm-1", "vm-2"], ("vm-1", "vm-2")), ("vm-1, vm-2", ("vm-1", "vm-2")), ("vm-1", ("vm-1",))],
)
def test_aodh_traits_may_carry_the_instances_as_a_list_or_a_string(value: object, expected: tuple[str, ...]) -> None:
    body = {**AODH, "reason_data": {"type": "event", "event": {"traits": [["resource_ids", 1, value]]}}}
    assert parse_notification(body, {}, received_at=0).resource_ids == expected


def test_a_sol003_alarm_notification_names_its_vnfc_instances() -> None:
    note = parse_notification(SOL003_RAISED, {"x-vigil-notification-id": "nid-2"}, received_at=1.0)
    assert (note.id, note.format, note.alarm_id, note.severity) == ("nid-2", "sol003", "a1", "CRITICAL")
    assert note.resource_ids == ("vm-1", "vm-2")
    assert not note.cleared


def test_a_sol003_cleared_notification_names_only_the_alarm() -> None:
    note = parse_notification(SOL003_CLEARED, {}, received_at=1.0)
    assert (note.id, note.cleared, note.alarm_id, note.resource_ids) == ("n2", True, "a1", ())


@pytest.mark.parametrize("body", [[], "text", {"hello": "world"}])
def test_anything_else_is_refused(body: object) -> None:
    with pytest.raises(BadNotification):
        parse_notification(body, {}, received_at=0)


# -- maintenance messages (Aodh event alarms on maintenance.scheduled / maintenance.host) --

MAINTENANCE = {
    "alarm_name": "maintenance",
    "alarm_id": "s1",
    "severity": "low",
    "previous": "ok",
    "current": "alarm",
    "reason": "maintenance.scheduled: MAINTENANCE of maintenance session sess-1",
    "reason_data": {
        "type": "event",
        "event": {
            "message_id": "nid-7",
            "event_type": "maintenance.scheduled",
            "traits": [
                ["session_id", 1, "sess-1"],
                ["instance_ids", 1, '["vm-1", "vm-2"]'],
                ["allowed_actions", 1, "MIGRATE,OWN_ACTION"],
                ["state", 1, "MAINTENANCE"],
                ["actions_at", 4, "2026-03-01T13:00:00.000000Z"],
                ["metadata", 1, '{"reason": "upgrade"}'],
                ["project_id", 1, "vnf-a"],
                ["tenant_id", 1, "vnf-a"],
                ["vigil_notification_id", 1, "nid-7"],
            ],
        },
    },
}


def test_a_maintenance_body_gives_back_the_payload_with_every_field() -> None:
    notice = parse_maintenance(MAINTENANCE)
    assert notice is not None
    assert (notice.id, notice.event_type, notice.session_id, notice.state, notice.is_host) == (
        "nid-7",
        "maintenance.scheduled",
        "sess-1",
        "MAINTENANCE",
        False,
    )
    assert notice.payload == {
        "session_id": "sess-1",
        "project_id": "vnf-a",
        "instance_ids": ["vm-1", "vm-2"],
        "allowed_actions": ["MIGRATE", "OWN_ACTION"],  # a comma-separated string is read as well
        "state": "MAINTENANCE",
        "actions_at": "2026-03-01T13:00:00.000000Z",
        "reply_at": None,
        "reply_url": None,
        "metadata": {"reason": "upgrade"},
    }
    from_header = parse_maintenance(MAINTENANCE, {"X-Vigil-Notification-Id": "from-header"})
    assert from_header is not None
    assert from_header.id == "from-header"


def test_a_host_message_has_the_host_fields() -> None:
    event = {"event_type": "maintenance.host", "traits": [["host", 1, "compute-1"], ["state", 1, "IN_MAINTENANCE"]]}
    notice = parse_maintenance({**MAINTENANCE, "reason_data": {"type": "event", "event": event}})
    assert notice is not None
    assert notice.is_host
    assert notice.payload == {"session_id": None, "host": "compute-1", "state": "IN_MAINTENANCE"}


@pytest.mark.parametrize("body", [AODH, SOL003_RAISED, SOL003_CLEARED, {}, [], "text", {"reason_data": "x"}])
def test_anything_else_is_no_maintenance_message(body: object) -> None:
    assert parse_maintenance(body) is None
