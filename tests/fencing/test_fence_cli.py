"""``vigil fence`` from a shell, on settings written as an operator would, against the BMC emulators; and the
fencing settings refusing what could not be given safely to an agent's stdin."""

import json
from pathlib import Path

import pytest
import yaml
from bmc_support import PASSWORD, USER, Bmcs
from typer.testing import CliRunner

from vigil.cli import app
from vigil.settings import SettingsError, load_settings


def settings_file(tmp_path: Path, bmcs: Bmcs, password: str = PASSWORD) -> Path:
    """compute-1 fenced by IPMI with the password in a file, compute-2 by Redfish with it inline."""
    secret = tmp_path / "compute-1.bmc"
    secret.write_text(password)
    secret.chmod(0o600)
    c1, c2 = bmcs.by_host["compute-1"], bmcs.by_host["compute-2"]
    devices = {
        "compute-1": {
            "agent": "fence_ipmilan",
            "options": {"ip": c1.address, "ipport": str(c1.ipmi_port), "username": USER, "lanplus": "1"},
            "secret_files": {"password": str(secret)},
        },
        "compute-2": {
            "agent": "fence_redfish",
            "options": {
                "ip": c2.address,
                "ipport": str(c2.redfish_port),
                "username": USER,
                "ssl_insecure": "1",
                "systems_uri": "/redfish/v1/Systems/compute-2",
            },
            "secrets": {"password": password},
            "timeout_s": 20,
        },
    }
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "fencing": {"devices": devices}}))
    return path


def test_list_shows_every_device_and_no_secret(bmcs: Bmcs, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["fence", "list", "--config", str(settings_file(tmp_path, bmcs)), "--json"])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [(d["host"], d["agent"], d["secrets"]) for d in shown] == [
        ("compute-1", "fence_ipmilan", ["password"]),
        ("compute-2", "fence_redfish", ["password"]),
    ]
    assert [d["timeout_s"] for d in shown] == [60.0, 20.0]
    assert PASSWORD not in result.output


@pytest.mark.parametrize("host", ["compute-1", "compute-2"])
def test_status_reads_the_power_and_off_fences_with_confirmation(bmcs: Bmcs, tmp_path: Path, host: str) -> None:
    config = str(settings_file(tmp_path, bmcs))
    runner = CliRunner()

    status = runner.invoke(app, ["fence", "status", host, "--config", config, "--json"])
    refused = runner.invoke(app, ["fence", "off", host, "--config", config])
    fenced = runner.invoke(app, ["fence", "off", host, "--config", config, "--yes", "--json"])
    after = runner.invoke(app, ["fence", "status", host, "--config", config])

    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["power"] == "on"
    assert refused.exit_code == 2, "no fence without --yes"
    assert fenced.exit_code == 0, fenced.output
    assert json.loads(fenced.output)["confirmed"] is True
    assert not bmcs.powered(host)
    assert after.exit_code == 0
    assert f"{host}: power off" in after.output


def test_a_bmc_refusing_the_login_exits_1_with_the_agents_reason(bmcs: Bmcs, tmp_path: Path) -> None:
    config = str(settings_file(tmp_path, bmcs, password="wrong-password"))

    result = CliRunner().invoke(app, ["fence", "off", "compute-2", "--config", config, "--yes"])

    assert result.exit_code == 1
    assert "not fenced" in result.output
    assert "wrong-password" not in result.output
    assert bmcs.powered("compute-2")


def test_a_host_without_a_device_exits_2(bmcs: Bmcs, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["fence", "status", "compute-9", "--config", str(settings_file(tmp_path, bmcs))])

    assert result.exit_code == 2
    assert "no fence device for host 'compute-9'" in result.output


@pytest.mark.parametrize(
    ("device", "complaint"),
    [
        ({"agent": "fence_ipmilan", "options": {"ip": "10.0.0.1\naction=on"}}, "a value must be one line"),
        ({"agent": "fence_ipmilan", "secrets": {"password": "pw\nip=10.6.6.6"}}, "a value must be one line"),
        ({"agent": "fence_ipmilan", "options": {"action": "on"}}, "is Vigil's to set"),
        ({"agent": "fence_ipmilan", "options": {"IP": "10.0.0.1"}}, "lower-case letters"),
        ({"agent": "rm -rf /", "options": {}}, "a fence agent is a fence_. program name"),
        ({"agent": "fence_ipmilan", "options": {"password": "a"}, "secrets": {"password": "b"}}, "given twice"),
    ],
)
def test_a_device_an_agent_could_misread_is_refused_at_load(device: dict[str, object], complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint) as refused:
        load_settings(None, fencing={"devices": {"compute-1": device}})

    assert "fencing.devices.compute-1" in str(refused.value)
