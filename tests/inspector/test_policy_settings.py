"""The inspector's policies from settings: which families are critical, and the aggregation."""

import pytest

from vigil.settings import InspectorSettings, SettingsError, load_settings
from vigil.wiring import fault_policies


def test_by_default_nics_gateways_and_processes_aggregate_two_within_ten_seconds() -> None:
    policies = fault_policies(InspectorSettings())
    assert {f for f, p in policies.items() if p.critical} == {"compute.host", "network.switch", "compute.instance"}
    assert {f for f, p in policies.items() if not p.critical} == {"network.link", "compute.process"}
    assert (policies["network.link"].threshold, policies["network.link"].window_s) == (2, 10.0)


def test_one_nic_down_can_be_made_enough_to_fail_a_host() -> None:
    policies = fault_policies(InspectorSettings(critical=["compute.host", "network.switch", "network.link"]))
    assert policies["network.link"].critical
    assert not policies["compute.process"].critical


def test_the_threshold_and_window_are_settings() -> None:
    settings = load_settings(None, inspector={"aggregate_threshold": 3, "aggregate_window_s": 30})
    policy = fault_policies(settings.inspector)["compute.process"]
    assert (policy.threshold, policy.window_s) == (3, 30)


@pytest.mark.parametrize(
    ("group", "value", "named"),
    [
        ("inspector", {"critical": ["network.nic"]}, "inspector.critical"),
        ("inspector", {"critical": ["network.link"]}, "inspector.critical"),
        ("inspector", {"aggregate_threshold": 0}, "inspector.aggregate_threshold"),
        ("monitor", {"listen": "8771"}, "monitor.listen"),
        ("monitor", {"detect_mult": 0}, "monitor.detect_mult"),
        ("monitor", {"interval_ms": 0}, "monitor.interval_ms"),
    ],
)
def test_wrong_settings_are_refused_by_name(group: str, value: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(None, **{group: value})


def test_the_heartbeat_monitor_can_be_turned_off() -> None:
    assert load_settings(None, monitor={"listen": "off"}).monitor.address is None
    assert load_settings(None, monitor={"listen": "0.0.0.0:9000"}).monitor.address == ("0.0.0.0", 9000)
