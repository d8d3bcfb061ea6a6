"""``vigil demo fault``: Doctor's fault management test in one process."""

import json

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.demo import demo_topology

runner = CliRunner()


@pytest.mark.parametrize("payload_format", ["aodh", "sol003"])
def test_the_fault_demo_prints_one_json_object_with_the_notification_time(payload_format: str) -> None:
    result = runner.invoke(app, ["demo", "fault", "--instances", "3", "--json", "--format", payload_format])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["instances"] == 3
    assert report["notified"] is True
    assert report["notification_ms"] >= 0
    assert report["notification_ms"] == report["checkpoints_ms"]["T09"]
    assert {"T00", "T01", "T02", "T03", "T04", "T05", "T06", "T07", "T09"} <= set(report["checkpoints_ms"])
    assert report["checkpoints_ms"]["T01"] == 0
    assert report["switchover_ms"] is not None
    assert report["recreated"] == 3  # the ACT and two workers on the failed host
    assert report["format"] == payload_format


def test_the_fault_demo_prints_the_checkpoint_table() -> None:
    result = runner.invoke(app, ["demo", "fault", "--instances", "1"])
    assert result.exit_code == 0, result.output
    for text in ("T00", "T09", "consumer received", "switched", "notification time"):
        assert text in result.stdout


def test_the_demo_cloud_puts_n_instances_of_the_vnf_on_the_failed_host_with_the_act() -> None:
    topology = demo_topology(5)
    on_failed = [i for i in topology["instances"] if i.get("host") == "compute-1" and i["project"] == "vnf-demo"]
    assert len(on_failed) == 5
    assert any(i.get("metadata", {}).get("role") == "ACT" for i in on_failed)
    with pytest.raises(ValueError, match="at least one"):
        demo_topology(0)
