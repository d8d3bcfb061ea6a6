"""Alertmanager's webhook payloads mapped to southbound reports (pure: vigil.monitor.alertmanager)."""

import itertools
from datetime import UTC, datetime

import pytest

from vigil.domain.faults import EventStatus
from vigil.monitor.alertmanager import Alert, AlertMapping, AlertStatus, Notification, host_of, reports
from vigil.monitor.reports import BadInput

NOW = datetime(2026, 3, 14, 9, 27, tzinfo=UTC)
STARTED = datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
ENDED = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
MAPPING = AlertMapping(
    alerts={"NodeDown": "compute.host", "NicDown": "network.link"},
    hosts={"10.0.0.11": "compute-1"},
)


def alert(name: str = "NodeDown", status: str = "firing", **labels: str) -> Alert:
    return Alert(
        status=AlertStatus(status),
        labels={"alertname": name, "instance": "10.0.0.11:9100", "job": "node", **labels},
        annotations={"summary": f"{name} on 10.0.0.11"},
        starts_at=STARTED,
        ends_at=ENDED if status == "resolved" else datetime(1, 1, 1, tzinfo=UTC),
        fingerprint=f"fp-{name}",
    )


def mapped(*alerts: Alert, mapping: AlertMapping = MAPPING, version: str = "4"):  # type: ignore[no-untyped-def]
    ids = (f"id-{n}" for n in itertools.count())
    return reports(Notification(version=version, alerts=alerts), mapping, received_at=NOW, new_id=lambda: next(ids))


def test_a_firing_alert_is_a_down_report_at_its_start_from_alertmanager_with_its_fingerprint() -> None:
    [event] = mapped(alert(severity="critical")).events
    assert (event.type, event.status, event.hostname, event.time) == (
        "compute.host.down",
        EventStatus.DOWN,
        "compute-1",
        STARTED,
    )
    assert (event.monitor, event.monitor_event_id, event.received_at) == ("alertmanager", "fp-NodeDown", NOW)
    assert (event.severity, event.cause) == ("critical", "NodeDown on 10.0.0.11")


def test_the_report_keeps_the_alarm_as_vitrages_prometheus_datasource_names_it() -> None:
    """What rule templates match: the alertname, and the severity label when there is one."""
    assert mapped(alert("NicDown", severity="critical")).events[0].alarm == {"name": "NicDown", "severity": "critical"}
    assert mapped(alert("NicDown")).events[0].alarm == {"name": "NicDown"}


def test_a_resolved_alert_is_an_up_report_at_its_end() -> None:
    [event] = mapped(alert(status="resolved")).events
    assert (event.type, event.status, event.time, event.monitor_event_id) == (
        "compute.host.up",
        EventStatus.UP,
        ENDED,
        "fp-NodeDown",
    )


def test_an_alert_whose_name_is_not_mapped_is_ignored_with_the_reason() -> None:
    result = mapped(alert("Watchdog"), alert())
    assert [e.type for e in result.events] == ["compute.host.down"]
    [ignored] = result.ignored
    assert (ignored.name, ignored.id) == ("Watchdog", "fp-Watchdog")
    assert "ingest.alertmanager.alerts" in ignored.reason


def test_a_non_critical_failure_relates_to_the_related_label_else_to_the_alert() -> None:
    nic, other = mapped(alert("NicDown", device="eth1"), alert("NicDown", job="blackbox")).events
    assert (nic.type, nic.related_to, other.related_to) == ("network.link.down", "eth1", "NicDown")


@pytest.mark.parametrize(
    ("label", "host"),
    [
        ("10.0.0.11:9100", "10.0.0.11"),
        ("compute-2:9100", "compute-2"),
        ("compute-2", "compute-2"),
        ("[::1]:9100", "::1"),
        ("::1", "::1"),
        ("fe80::1:9100", "fe80::1:9100"),  # a bare IPv6 address has no port to strip
    ],
)
def test_the_port_is_stripped_from_the_host_label(label: str, host: str) -> None:
    assert host_of(label, strip_port=True) == host
    assert host_of(label, strip_port=False) == label


def test_the_host_label_and_the_host_map_are_configuration() -> None:
    mapping = AlertMapping(alerts={"NodeDown": "compute.host"}, host_label="nodename", hosts={"node7": "compute-3"})
    [named, unmapped] = mapped(alert(nodename="node7"), alert(nodename="compute-4"), mapping=mapping).events
    assert (named.hostname, unmapped.hostname) == ("compute-3", "compute-4")


def test_a_mapped_alert_without_its_host_label_is_bad_input_naming_it() -> None:
    bad = Alert(AlertStatus.FIRING, {"alertname": "NodeDown"}, STARTED, "fp-x")
    with pytest.raises(BadInput, match=r"alerts\[1\] \(NodeDown, fingerprint fp-x\): no label 'instance'"):
        mapped(alert(), bad)


def test_a_resolved_alert_without_an_end_is_bad_input() -> None:
    bad = Alert(AlertStatus.RESOLVED, alert().labels, STARTED, "fp-y", ends_at=datetime(1, 1, 1, tzinfo=UTC))
    with pytest.raises(BadInput, match="without endsAt"):
        mapped(bad)


def test_only_version_4_is_taken() -> None:
    with pytest.raises(BadInput, match="version '3'"):
        mapped(alert(), version="3")


def test_a_host_name_longer_than_the_southbound_api_takes_is_bad_input() -> None:
    with pytest.raises(BadInput, match="over 255 characters"):
        mapped(alert(instance="h" * 300))
