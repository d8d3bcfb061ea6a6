"""``vigil rules check``: problems as file:line: message and exit 1, or a summary and exit 0."""

import json
from pathlib import Path

from typer.testing import CliRunner

from vigil.rules_cli import rules_app

from .conftest import TEMPLATES, Write, line_of

runner = CliRunner()

BROKEN = """
metadata:
  version: 3
  name: broken
  type: standard
entities:
  host:
    type: nova.hots
  alarm:
    type: zabbix
scenarios:
  - condition: alarm [on] host AND (host
    actions:
      - reboot:
          target: host
"""


def _broken(write: Write) -> Path:
    return write("broken.yaml", BROKEN)


def test_good_files_print_a_summary_and_exit_0() -> None:
    result = runner.invoke(rules_app, ["check", str(TEMPLATES / "enea_mark_inst_err.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ("OK: 1 file(s), 1 template(s) and 0 definition template(s), 1 scenario(s), 3 action(s)")
    assert lines[1:] == ["  mark_down: 1", "  set_instance_state: 1", "  set_state: 1"]


def test_a_directory_is_checked_as_one_set() -> None:
    result = runner.invoke(rules_app, ["check", str(TEMPLATES), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["ok"] is True
    assert summary["problems"] == []
    assert summary["files"] == len(list(TEMPLATES.glob("*.yaml")))
    assert (summary["templates"], summary["definition_templates"]) == (7, 1)
    assert summary["actions"]["fence"] == 2
    assert summary["actions"]["add_causal_relationship"] == 2
    assert "vigil_definitions" in summary["names"]


def test_each_problem_is_printed_as_file_line_message_and_exit_1(write: Write) -> None:
    path = _broken(write)
    result = runner.invoke(rules_app, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:{line_of(path, 'nova.hots')}: entity 'host': unknown resource type 'nova.hots' "
        "(known: cluster, host, instance, network.switch, neutron.port, nova.host, nova.instance, "
        "nova.server_group, nova.zone, openstack.cluster, port, project, server_group, switch, zone)",
        f"{path}:{line_of(path, 'condition:')}: malformed condition 'alarm [on] host AND (host': "
        "unbalanced parentheses: '(' (column 21) is never closed",
        f"{path}:{line_of(path, '- reboot:')}: unknown action type 'reboot' (known: raise_alarm, set_state, "
        "mark_down, add_causal_relationship, execute_mistral, set_instance_state, fence)",
    ]
    assert "3 problem(s) in 1 file(s)" in result.stderr


def test_json_lists_the_problems_with_their_lines(write: Write) -> None:
    path = _broken(write)
    result = runner.invoke(rules_app, ["check", "--json", str(path), str(TEMPLATES / "standby_lost.yaml")])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["files"] == 2
    assert [(p["file"], p["line"]) for p in report["problems"]] == [
        (str(path), line_of(path, "nova.hots")),
        (str(path), line_of(path, "condition:")),
        (str(path), line_of(path, "- reboot:")),
    ]


def test_an_alarm_type_can_be_added(write: Write) -> None:
    path = write("nagios.yaml", (TEMPLATES / "enea_mark_inst_err.yaml").read_text().replace("zabbix", "nagios"))
    refused = runner.invoke(rules_app, ["check", str(path)])
    assert refused.exit_code == 1
    assert "unknown alarm type 'nagios'" in refused.stdout
    accepted = runner.invoke(rules_app, ["check", str(path), "--alarm-type", "nagios", "--alarm-type", "aodh"])
    assert accepted.exit_code == 0, accepted.output


def test_with_defaults_checks_against_vigils_own_templates(write: Write) -> None:
    # a template that raises what the default server group template needs, and needs what that raises
    path = write(
        "loop.yaml",
        """
        metadata:
          version: 3
          name: loop
          type: standard
        entities:
          degraded:
            category: ALARM
            type: vitrage
            name: server_group.degraded
          group:
            type: nova.server_group
          instance:
            type: nova.instance
        scenarios:
          - condition: degraded [on] group AND group [contains] instance
            actions:
              - raise_alarm:
                  target: instance
                  alarm_name: instance.down
                  severity: WARNING
        """,
    )
    alone = runner.invoke(rules_app, ["check", str(path)])
    assert alone.exit_code == 0, alone.output
    together = runner.invoke(rules_app, ["check", "--with-defaults", str(path)])
    assert together.exit_code == 1
    assert f"{path}:{line_of(path, '- raise_alarm:')}: deduced alarms form a cycle" in together.stdout
    assert "server_group.yaml" in together.stdout


def test_a_missing_path_is_a_usage_error() -> None:
    result = runner.invoke(rules_app, ["check", "/nonexistent/template.yaml"])
    assert result.exit_code == 2


def test_it_is_vigil_rules_check() -> None:
    from vigil.cli import app

    result = runner.invoke(app, ["rules", "check", str(TEMPLATES / "standby_lost.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 1 file(s), 1 template(s)")
