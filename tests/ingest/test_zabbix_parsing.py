"""Zabbix's trigger messages (Enea's media type text, the webhook's JSON, Vitrage's oslo notification) mapped to
southbound reports (pure: vigil.monitor.zabbix)."""

import itertools
import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vigil.domain.faults import EventStatus
from vigil.monitor.reports import BadInput, Ignored
from vigil.monitor.zabbix import TriggerEvent, TriggerMapping, TriggerRule, parse_body, parse_json, parse_text, reports

NOW = datetime(2026, 3, 14, 9, 27, tzinfo=UTC)
# Seed 004's media type message, its macros resolved as Zabbix resolves them for the agent trigger it edits.
SEED = (
    "host=compute-1 hostid=10105 hostip=10.0.0.11 triggerid=13491 "
    "description=Zabbix agent on compute-1 is unreachable for 5 minutes "
    "rawtext=Zabbix agent on {HOST.NAME} is unreachable for 5 minutes "
    "expression={compute-1:agent.ping.nodata(20s)}=1 value=1 priority=4 lastchange=2026.03.14 09:26:53"
)
FIELDS = {
    "host": "compute-1",
    "hostid": "10105",
    "hostip": "10.0.0.11",
    "triggerid": "13491",
    "description": "Zabbix agent on compute-1 is unreachable for 5 minutes",
    "rawtext": "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes",
    "expression": "{compute-1:agent.ping.nodata(20s)}=1",
    "value": "1",
    "priority": "4",
    "lastchange": "2026.03.14 09:26:53",
}
AGENT = TriggerRule(re.compile(r"(?i)zabbix agent\b.*\b(unreachable|not available)"), "compute.host")
NOVA = TriggerRule(re.compile(r"nova-compute"), "compute.process", related_to="nova-compute")
MAPPING = TriggerMapping(rules=[AGENT, NOVA], hosts={"node-4.domain.tld": "compute-4"})


def mapped(*triggers: TriggerEvent, mapping: TriggerMapping = MAPPING):  # type: ignore[no-untyped-def]
    ids = (f"id-{n}" for n in itertools.count())
    return reports(triggers, mapping, received_at=NOW, new_id=lambda: next(ids))


def test_the_seeds_one_line_message_is_read_whole_with_spaces_and_equals_in_its_values() -> None:
    trigger = parse_text(SEED)
    assert trigger == TriggerEvent(
        host="compute-1",
        hostid="10105",
        hostip="10.0.0.11",
        triggerid="13491",
        problem=True,
        priority=4,
        description=FIELDS["description"],
        rawtext=FIELDS["rawtext"],
        expression="{compute-1:agent.ping.nodata(20s)}=1",
        lastchange=datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
    )


def test_one_field_per_line_as_vitrages_script_takes_it_reads_the_same() -> None:
    text = "\n".join(f"{key}={value}" for key, value in FIELDS.items())
    assert parse_text(text) == parse_text(SEED)


def test_the_webhook_json_takes_numbers_as_strings_or_numbers_and_ignores_other_parameters() -> None:
    body = {**FIELDS, "value": 1, "priority": 4, "triggerid": 13491, "URL": "http://vigil", "To": "admin"}
    assert parse_json(body) == parse_text(SEED)


def test_vitrages_oslo_notification_is_read_from_its_payload_and_its_event_type_gives_the_value() -> None:
    payload = {k: v for k, v in FIELDS.items() if k != "value"}
    message = {"event_type": "zabbix.alarm.ok", "payload": payload, "publisher_id": "zabbix_node-1", "priority": "INFO"}
    envelope = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()
    trigger = parse_body(envelope)
    assert isinstance(trigger, TriggerEvent)
    assert (trigger.host, trigger.problem) == ("compute-1", False)
    other = {"event_type": "compute.instance.update", "payload": {}, "message_id": "m-1"}
    assert isinstance(parse_body(json.dumps(other).encode()), Ignored)


def test_a_problem_is_a_down_report_at_lastchange_with_zabbix_severity_mapped() -> None:
    [event] = mapped(parse_text(SEED)).events
    assert (event.type, event.status, event.hostname, event.time) == (
        "compute.host.down",
        EventStatus.DOWN,
        "compute-1",
        datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
    )
    assert (event.monitor, event.monitor_event_id, event.severity) == ("zabbix", "trigger-13491:problem", "MAJOR")
    assert event.cause == "Zabbix agent on compute-1 is unreachable for 5 minutes"


@pytest.mark.parametrize(("priority", "name"), [(0, "NOT CLASSIFIED"), (3, "AVERAGE"), (4, "HIGH"), (5, "DISASTER")])
def test_the_report_keeps_the_alarm_as_vitrages_zabbix_datasource_names_and_grades_it(priority: int, name: str) -> None:
    """What rule templates match: the trigger's name, its name before macros, Zabbix's own severity name."""
    [event] = mapped(parse_text(SEED.replace("priority=4", f"priority={priority}"))).events
    assert event.alarm == {
        "name": "Zabbix agent on compute-1 is unreachable for 5 minutes",
        "rawtext": "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes",
        "severity": name,
    }


def test_an_ok_is_an_up_report_distinct_from_its_problem_even_at_the_problems_time() -> None:
    problem = mapped(parse_text(SEED)).events[0]
    [ok] = mapped(parse_text(SEED.replace("value=1", "value=0"))).events
    assert (ok.type, ok.status) == ("compute.host.up", EventStatus.UP)
    assert ok.dedup_key != problem.dedup_key
    assert ok.time == problem.time


def test_the_event_id_names_the_report_when_given() -> None:
    [event] = mapped(parse_json({**FIELDS, "eventid": "4711"})).events
    assert event.monitor_event_id == "4711:problem"


@pytest.mark.parametrize(
    ("priority", "severity"),
    [(0, "INDETERMINATE"), (1, "WARNING"), (2, "WARNING"), (3, "MINOR"), (4, "MAJOR"), (5, "CRITICAL")],
)
def test_nseverity_maps_to_vigils_severity(priority: int, severity: str) -> None:
    [event] = mapped(parse_json({**FIELDS, "priority": priority})).events
    assert event.severity == severity


def test_the_first_rule_matching_rawtext_or_description_decides_the_family_and_hosts_map() -> None:
    nova = parse_json({**FIELDS, "host": "node-4.domain.tld", "description": "nova-compute is down", "rawtext": ""})
    [event] = mapped(nova).events
    assert (event.type, event.hostname, event.related_to) == ("compute.process.down", "compute-4", "nova-compute")


def test_a_trigger_no_rule_matches_is_ignored() -> None:
    disk = parse_json({**FIELDS, "description": "Free disk space is less than 20%", "rawtext": "Free disk space"})
    result = mapped(disk)
    assert result.events == []
    [ignored] = result.ignored
    assert (ignored.name, ignored.id) == ("Free disk space is less than 20%", "trigger 13491")


def test_lastchange_is_in_the_zabbix_servers_zone_unless_it_names_one() -> None:
    zone = ZoneInfo("Europe/Stockholm")
    assert parse_text(SEED, zone).lastchange == datetime(2026, 3, 14, 8, 26, 53, tzinfo=UTC)
    iso = parse_json({**FIELDS, "lastchange": "2026-03-14T09:26:53+02:00"}, zone)
    assert isinstance(iso, TriggerEvent)
    assert iso.lastchange == datetime(2026, 3, 14, 7, 26, 53, tzinfo=UTC)
    bare = parse_json({k: v for k, v in FIELDS.items() if k != "lastchange"})
    assert isinstance(bare, TriggerEvent)
    assert bare.lastchange is None
    [event] = mapped(bare).events
    assert event.time == NOW  # no lastchange: the time it was received


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("hello world", "expected host="),
        (SEED.replace("value=1", "value=2"), "value '2'"),
        (SEED.replace("priority=4", "priority=9"), "priority '9'"),
        (SEED.replace("host=compute-1 ", ""), "missing host"),
        (SEED.replace("lastchange=2026.03.14 09:26:53", "lastchange={EVENT.DATE} {EVENT.TIME}"), "not a date"),
        (SEED + " value=0", "value is given twice"),
        ("host=a\nnot a field\ntriggerid=1\nvalue=1", "is not key=value"),
    ],
)
def test_bad_messages_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(BadInput, match=re.escape(problem)):
        parse_text(text)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"oslo.version": "2.0", "oslo.message": "{broken"}', "oslo.message is not JSON"),
        (b'{"event_type": "zabbix.alarm.problem", "payload": []}', "payload is not a JSON object"),
        (b'{"host": "compute-1", "triggerid": true, "value": 1}', "triggerid must be a string or an integer"),
        (b'{"host": "compute-1", "triggerid": 1, "value": 1, "x\\u0000": ""}', "NUL character"),
    ],
)
def test_bad_queue_messages_say_what_is_wrong(body: bytes, problem: str) -> None:
    with pytest.raises(BadInput, match=re.escape(problem)):
        parse_body(body)
