"""Templates refused at load, each problem at its file and line."""

from pathlib import Path

import pytest

from vigil.rules import Problem, TemplateError, load_rules, load_sources

from .conftest import Write, line_of, only_problem, problems

V2_HEAD = """
metadata:
 version: 2
 name: {name}
 type: standard
definitions:
 entities:
  - entity:
     category: ALARM
     type: zabbix
     template_id: alarm
  - entity:
     category: RESOURCE
     type: nova.host
     template_id: host
  - entity:
     category: RESOURCE
     type: nova.instance
     template_id: instance
 relationships:
  - relationship:
     source: alarm
     relationship_type: on
     target: host
     template_id: alarm_on_host
  - relationship:
     source: host
     relationship_type: contains
     target: instance
     template_id: host_contains_instance
"""


def v2(name: str, scenarios: str) -> str:
    return V2_HEAD.format(name=name) + scenarios


def v3(name: str, body: str) -> str:
    return f"""
metadata:
  version: 3
  name: {name}
  type: standard
entities:
  alarm:
    type: zabbix
  host:
    type: nova.host
  instance:
    type: nova.instance
{body}"""


def set_state_on(condition: str, target: str = "host") -> str:
    return f"""
scenarios:
 - scenario:
    condition: {condition}
    actions:
     - action:
        action_type: set_state
        action_target:
         target: {target}
        properties:
         state: ERROR
"""


def assert_at(problem: Problem, path: Path, needle: str, message: str, occurrence: int = 1) -> None:
    assert (problem.file, problem.line) == (str(path), line_of(path, needle, occurrence)), str(problem)
    assert message in problem.message, str(problem)


def test_the_base_templates_of_these_tests_load(write: Write) -> None:
    path = write("ok.yaml", v2("ok", set_state_on("alarm_on_host")))
    other = write(
        "ok3.yaml",
        v3(
            "ok3",
            "scenarios:\n  - condition: alarm [on] host\n    actions:\n      - mark_down:\n          target: host\n",
        ),
    )
    assert [t.name for t in load_rules([path, other]).templates] == ["ok", "ok3"]


def test_a_file_that_does_not_parse(write: Write) -> None:
    path = write("bad.yaml", "metadata:\n name: x\ndefinitions:\n entities: [a, b\nscenarios: []\n")
    problem = only_problem(path)
    assert (problem.file, problem.line) == (str(path), 5)
    assert problem.message.startswith("not valid YAML:")


def test_a_file_whose_indentation_breaks_the_mapping(write: Write) -> None:
    path = write("indent.yaml", "metadata:\n  name: x\n    description: y\n")
    assert_at(only_problem(path), path, "description: y", "not valid YAML")


def test_an_unknown_resource_type(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host")).replace("type: nova.instance", "type: nova.instanse"))
    assert_at(only_problem(path), path, "nova.instanse", "entity 'instance': unknown resource type 'nova.instanse'")


def test_an_unknown_alarm_type_unless_configured(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host")).replace("type: zabbix", "type: nagios"))
    assert_at(only_problem(path), path, "type: nagios", "entity 'alarm': unknown alarm type 'nagios'")
    (template,) = load_rules([path], alarm_types=["nagios"]).templates
    assert template.entities["alarm"].type == "nagios"


def test_an_unknown_type_in_version_3(write: Write) -> None:
    body = "  other:\n    type: cinder.volume\nscenarios:\n  - condition: alarm [on] host\n    actions:\n"
    body += "      - mark_down:\n          target: host\n"
    path = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path), path, "cinder.volume", "unknown resource type 'cinder.volume'")


def test_an_unknown_action_type(write: Write) -> None:
    path = write(
        "t.yaml", v2("t", set_state_on("alarm_on_host")).replace("action_type: set_state", "action_type: reboot")
    )
    assert_at(only_problem(path), path, "action_type: reboot", "unknown action type 'reboot'")


def test_an_unknown_action_type_in_version_3(write: Write) -> None:
    body = "scenarios:\n  - condition: alarm [on] host\n    actions:\n      - power_cycle:\n          target: host\n"
    path = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path), path, "- power_cycle:", "unknown action type 'power_cycle'")


def test_a_condition_naming_an_unknown_template_id(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host and host_contains_vm")))
    assert_at(only_problem(path), path, "condition:", "condition names unknown template id 'host_contains_vm'")


def test_an_inline_relationship_naming_an_unknown_entity(write: Write) -> None:
    body = "scenarios:\n  - condition: alarm [on] host AND host [contains] server\n    actions:\n"
    body += "      - mark_down:\n          target: host\n"
    path = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path), path, "- condition:", "condition names unknown template id 'server'")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("(alarm_on_host and host_contains_instance", "unbalanced parentheses: '(' (column 1) is never closed"),
        ("alarm_on_host and host_contains_instance)", "unbalanced parentheses: ')'"),
        ("alarm_on_host and", "dangling operator 'and'"),
        ("alarm_on_host or not", "dangling operator 'not'"),
    ],
)
def test_a_malformed_condition(write: Write, condition: str, message: str) -> None:
    path = write("t.yaml", v2("t", set_state_on(condition)))
    problem = only_problem(path)
    assert_at(problem, path, "condition:", f"malformed condition '{condition}': {message}")


def test_an_action_whose_target_is_not_in_the_template(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host", target="hots")))
    assert_at(only_problem(path), path, "target: hots", "set_state target 'hots' is not an entity of the template")


def test_an_action_whose_target_is_not_in_the_condition(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host", target="instance")))
    problem = only_problem(path)
    assert_at(problem, path, "target: instance", "set_state target 'instance' is not in every clause", occurrence=2)


def test_a_version_3_action_target_not_in_the_template(write: Write) -> None:
    body = "scenarios:\n  - condition: alarm [on] host\n    actions:\n      - raise_alarm:\n          target: zone\n"
    body += "          alarm_name: x\n          severity: WARNING\n"
    path = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path), path, "target: zone", "raise_alarm target 'zone' is not an entity of the template")


def test_a_relationship_whose_source_or_target_is_not_defined(write: Write) -> None:
    text = v2("t", set_state_on("alarm_on_host")).replace("     source: host\n", "     source: hypervisor\n")
    path = write("t.yaml", text)
    problem = only_problem(path)
    assert_at(problem, path, "source: hypervisor", "relationship 'host_contains_instance': source 'hypervisor'")


def test_an_unknown_relationship_type(write: Write) -> None:
    path = write(
        "t.yaml",
        v2("t", set_state_on("alarm_on_host")).replace("relationship_type: contains", "relationship_type: runs"),
    )
    assert_at(only_problem(path), path, "relationship_type: runs", "unknown relationship type 'runs'")


DEFINITION = """
metadata:
 version: 2
 name: {name}
 type: definition
{includes}definitions:
 entities:
  - entity:
     category: RESOURCE
     type: nova.host
     template_id: {entity}
"""

INCLUDER = """
metadata:
 version: 2
 name: includer
 type: standard
includes:
 - name: {include}
scenarios:
 - scenario:
    condition: host
    actions:
     - action:
        action_type: mark_down
        action_target:
         target: host
"""


def test_an_include_that_names_no_definition_template(write: Write) -> None:
    path = write("includer.yaml", INCLUDER.format(include="common"))
    defs = write("defs.yaml", DEFINITION.format(name="commons", includes="", entity="host"))
    assert_at(only_problem(path, defs), path, "- name: common", "include 'common' names no definition template")


def test_an_include_that_names_a_standard_template(write: Write) -> None:
    path = write("includer.yaml", INCLUDER.format(include="ok"))
    other = write("ok.yaml", v2("ok", set_state_on("alarm_on_host")))
    problem = only_problem(path, other)
    assert_at(problem, path, "- name: ok", "include 'ok' names a standard template")
    assert f"{other}:{line_of(other, 'name: ok')}" in problem.message


def test_an_include_cycle_names_every_include_on_it(write: Write) -> None:
    first = write("a.yaml", DEFINITION.format(name="defs_a", includes="includes:\n - name: defs_b\n", entity="host"))
    second = write("b.yaml", DEFINITION.format(name="defs_b", includes="includes:\n - name: defs_a\n", entity="other"))
    found = problems(first, second)
    assert len(found) == 2, found
    assert_at(found[0], first, "- name: defs_b", "include cycle: 'defs_a' → 'defs_b' → 'defs_a'")
    assert_at(found[1], second, "- name: defs_a", "include cycle: 'defs_a' → 'defs_b' → 'defs_a'")


def test_an_include_redefining_a_template_id(write: Write) -> None:
    defs = write("defs.yaml", DEFINITION.format(name="common", includes="", entity="alarm"))
    path = write(
        "t.yaml",
        v2("t", set_state_on("alarm_on_host")).replace(
            "type: standard\n", "type: standard\nincludes:\n - name: common\n"
        ),
    )
    problem = only_problem(path, defs)
    assert_at(problem, path, "- name: common", "template_id 'alarm' defined at")
    assert f"{defs}:" in problem.message


RAISER = """
metadata:
  version: 3
  name: {name}
  type: standard
entities:
  cause:
    category: ALARM
    type: vitrage
    name: {needs}
  host:
    type: nova.host
scenarios:
  - condition: cause [on] host
    actions:
      - raise_alarm:
          target: host
          alarm_name: {raises}
          severity: WARNING
"""


def test_a_cycle_of_deduced_alarms_across_templates(write: Write) -> None:
    ping = write("ping.yaml", RAISER.format(name="ping", needs="pong alarm", raises="ping alarm"))
    pong = write("pong.yaml", RAISER.format(name="pong", needs="ping alarm", raises="pong alarm"))
    found = problems(ping, pong)
    assert len(found) == 2, found
    assert_at(
        found[0], ping, "- raise_alarm:", "deduced alarms form a cycle: raise_alarm 'ping alarm' needs 'pong alarm'"
    )
    assert_at(found[1], pong, "- raise_alarm:", "raise_alarm 'pong alarm' needs 'ping alarm'")
    assert f"raised at {pong}:{line_of(pong, '- raise_alarm:')}" in found[0].message
    assert "template 'ping'" in found[1].message
    assert "template 'pong'" in found[1].message


def test_a_longer_cycle_and_a_chain_that_is_not_one(write: Write) -> None:
    a = write("a.yaml", RAISER.format(name="a", needs="c alarm", raises="a alarm"))
    b = write("b.yaml", RAISER.format(name="b", needs="a alarm", raises="b alarm"))
    c = write("c.yaml", RAISER.format(name="c", needs="b alarm", raises="c alarm"))
    assert [(p.file, p.line) for p in problems(a, b, c)] == [(str(p), line_of(p, "- raise_alarm:")) for p in (a, b, c)]
    c.write_text(c.read_text().replace("name: b alarm", "name: some monitor's alarm"))
    assert [t.name for t in load_rules([a, b, c]).templates] == ["a", "b", "c"]  # a chain, no cycle


def test_an_alarm_that_raises_itself(write: Write) -> None:
    path = write("self.yaml", RAISER.format(name="self", needs="echo", raises="echo"))
    assert_at(only_problem(path), path, "- raise_alarm:", "raise_alarm 'echo' needs 'echo'")


def test_an_alarm_raised_on_another_kind_of_resource_is_no_cycle(write: Write) -> None:
    text = RAISER.format(name="self", needs="echo", raises="echo").replace("type: nova.host", "type: nova.instance")
    text = text.replace("condition: cause [on] host", "condition: cause [on] host AND zone [contains] host")
    text = text.replace("scenarios:", "  zone:\n    type: nova.zone\nscenarios:").replace(
        "target: host", "target: zone"
    )
    path = write("elsewhere.yaml", text)
    (template,) = load_rules([path]).templates  # raised on a zone, wanted on an instance
    assert template.name == "self"


def test_not_before_an_entity(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host and not instance")))
    assert_at(
        only_problem(path),
        path,
        "condition:",
        "'not' can stand only before a relationship, not before entity 'instance'",
    )


def test_a_condition_of_negations_only(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("not alarm_on_host")))
    found = problems(path)
    assert any(
        "cannot be made of 'not' terms only" in p.message and p.line == line_of(path, "condition:") for p in found
    )


def test_or_clauses_with_no_common_entity(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host or instance")))
    assert_at(only_problem(path), path, "condition:", "no entity is common to every 'or' clause")


def test_a_condition_that_can_never_hold(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host and not alarm_on_host")))
    assert_at(only_problem(path), path, "condition:", "can never hold")


def test_a_duplicate_template_name(write: Write) -> None:
    first = write("a.yaml", v2("same", set_state_on("alarm_on_host")))
    second = write("b.yaml", v2("same", set_state_on("alarm_on_host")))
    problem = only_problem(first, second)
    assert_at(
        problem, second, "name: same", f"template name 'same' is already used at {first}:{line_of(first, 'name: same')}"
    )


def test_version_2_needs_a_type_and_version_3_takes_only_its_keys(write: Write) -> None:
    path = write("t.yaml", v2("t", set_state_on("alarm_on_host")).replace(" type: standard\n", ""))
    assert_at(only_problem(path), path, "metadata:", "metadata must contain 'type' from version 2")
    body = "scenarios:\n  - condition: alarm [on] host\n    actions:\n      - set_state:\n          target: host\n"
    body += "          state: ERROR\n          colour: red\n"
    path3 = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path3), path3, "colour: red", "set_state action: unknown property 'colour'")


def test_an_action_missing_what_it_needs(write: Write) -> None:
    path = write(
        "t.yaml", v2("t", set_state_on("alarm_on_host")).replace("        properties:\n         state: ERROR\n", "")
    )
    assert_at(only_problem(path), path, "- action:", "set_state action must contain 'state'")


def test_causal_relationship_between_resources(write: Write) -> None:
    body = "scenarios:\n  - condition: alarm [on] host\n    actions:\n      - add_causal_relationship:\n"
    body += "          source: alarm\n          target: host\n"
    path = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path), path, "target: host", "add_causal_relationship target 'host' must be an ALARM entity")


def test_unsupported_sections_are_refused_not_ignored(write: Write) -> None:
    path = write("t.yaml", "metadata:\n version: 2\n name: t\n type: equivalence\nequivalences: []\n")
    assert_at(problems(path)[0], path, "type: equivalence", "equivalence templates are not supported")
    body = "parameters:\n  x:\n    default: 1\nscenarios:\n  - condition: host\n    actions:\n"
    body += "      - mark_down:\n          target: host\n"
    path3 = write("t3.yaml", v3("t3", body))
    assert_at(only_problem(path3), path3, "parameters:", "template parameters (get_param) are not supported")


def test_every_problem_of_every_file_is_reported_at_once(write: Write) -> None:
    first = write("a.yaml", v2("a", set_state_on("alarm_on_host", target="hots")))
    second = write("b.yaml", v2("b", set_state_on("alarm_on_host and")))
    with pytest.raises(TemplateError) as refused:
        load_rules([first, second])
    assert [(p.file, p.line) for p in refused.value.problems] == [
        (str(first), line_of(first, "target: hots")),
        (str(second), line_of(second, "condition:")),
    ]
    lines = str(refused.value).splitlines()
    assert (
        lines[0]
        == f"{first}:{line_of(first, 'target: hots')}: set_state target 'hots' is not an entity of the template"
    )
    assert lines[1].startswith(f"{second}:{line_of(second, 'condition:')}: malformed condition")


def test_sources_load_without_files() -> None:
    with pytest.raises(TemplateError) as refused:
        load_sources([("inline.yaml", "metadata: {name: x, version: 4}\n")])
    assert [str(p) for p in refused.value.problems] == [
        "inline.yaml:1: unsupported template version '4' (supported: 1, 2, 3)"
    ]
