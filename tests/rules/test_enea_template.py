"""The Enea NFV Core template of seed 004 (Doctor with Zabbix, Vitrage and Tacker), loaded as written.

``enea_mark_inst_err.yaml`` is the seed's template verbatim (the seed's text
lost its line breaks; the keys, values and order are the seed's, including
``template_id :`` with a space and no ``metadata.version``, which makes it a
version 1 template in Vitrage's terms). ``enea_mark_inst_err_fence.yaml`` adds
the fence scenario the seed says "must be added".
"""

from vigil.domain.rules import (
    ActionType,
    And,
    Category,
    Literal,
    RuleResource,
    TemplateKind,
    Term,
    common_targets,
    to_dnf,
)
from vigil.rules import load_rules

from .conftest import TEMPLATES, line_of

ENEA = TEMPLATES / "enea_mark_inst_err.yaml"
ENEA_FENCE = TEMPLATES / "enea_mark_inst_err_fence.yaml"


def test_the_enea_template_loads_with_its_metadata() -> None:
    (template,) = load_rules([ENEA]).templates
    assert template.name == "test_mark_inst_err"
    assert template.description == "test description"
    assert template.version == 1  # no metadata.version: Vitrage's default
    assert template.kind is TemplateKind.STANDARD
    assert template.includes == ()
    assert template.source == str(ENEA)
    assert template.origin.line == line_of(ENEA, "name: test_mark_inst_err")


def test_its_entities_are_a_zabbix_alarm_a_host_and_an_instance() -> None:
    (template,) = load_rules([ENEA]).templates
    assert set(template.entities) == {"zabbix_alarm", "host", "instance"}
    alarm, host, instance = (template.entities[k] for k in ("zabbix_alarm", "host", "instance"))
    assert (alarm.category, alarm.type, alarm.resource) == (Category.ALARM, "zabbix", None)
    assert alarm.properties == {"severity": "HIGH"}
    assert (host.category, host.type, host.resource) == (Category.RESOURCE, "nova.host", RuleResource.HOST)
    assert (instance.category, instance.type, instance.resource) == (
        Category.RESOURCE,
        "nova.instance",
        RuleResource.INSTANCE,
    )
    assert host.properties == {}
    assert instance.properties == {}
    assert alarm.origin.line == line_of(ENEA, "- entity:", 1)
    assert instance.origin.line == line_of(ENEA, "- entity:", 3)


def test_its_relationships_put_the_alarm_on_the_host_and_the_instance_in_it() -> None:
    (template,) = load_rules([ENEA]).templates
    on = template.relationships["critical_problem_on_host"]
    contains = template.relationships["host_contains_instance"]
    assert (on.source, on.relationship_type, on.target) == ("zabbix_alarm", "on", "host")
    assert (contains.source, contains.relationship_type, contains.target) == ("host", "contains", "instance")
    assert set(template.relationships) == {"critical_problem_on_host", "host_contains_instance"}
    assert on.origin.line == line_of(ENEA, "- relationship:", 1)


def test_its_scenario_marks_the_host_down_and_sets_its_instances_to_error() -> None:
    (template,) = load_rules([ENEA]).templates
    (scenario,) = template.scenarios
    assert scenario.id == "test_mark_inst_err-scenario0"
    assert scenario.condition == And((Term("critical_problem_on_host"), Term("host_contains_instance")))
    assert scenario.condition_text == "critical_problem_on_host and host_contains_instance"
    assert scenario.origin.line == line_of(ENEA, "condition:")
    assert to_dnf(scenario.condition) == (
        (Literal("critical_problem_on_host", True), Literal("host_contains_instance", True)),
    )
    assert common_targets(template, to_dnf(scenario.condition)) == {"zabbix_alarm", "host", "instance"}
    mark_down, set_state, set_instance_state = scenario.actions
    assert (mark_down.type, mark_down.target, mark_down.properties) == (ActionType.MARK_DOWN, "host", {})
    assert (set_state.type, set_state.target, set_state.properties) == (
        ActionType.SET_STATE,
        "instance",
        {"state": "ERROR"},
    )
    assert (set_instance_state.type, set_instance_state.target) == (ActionType.SET_INSTANCE_STATE, "instance")
    assert set_instance_state.properties == {}  # Enea's action: ERROR without saying so
    assert [a.source for a in scenario.actions] == [None, None, None]
    assert [a.origin.line for a in scenario.actions] == [line_of(ENEA, "- action:", n) for n in (1, 2, 3)]


def test_the_fence_scenario_fences_the_host_on_the_alarm_alone() -> None:
    (template,) = load_rules([ENEA_FENCE]).templates
    first, fence = template.scenarios
    assert first.condition == And((Term("critical_problem_on_host"), Term("host_contains_instance")))
    assert fence.id == "test_mark_inst_err_fence-scenario1"
    assert fence.condition == Term("critical_problem_on_host")
    (action,) = fence.actions
    assert (action.type, action.target) == (ActionType.FENCE, "host")


def test_both_load_together_as_two_templates() -> None:
    rules = load_rules([ENEA, ENEA_FENCE])
    assert [t.name for t in rules.standard] == ["test_mark_inst_err", "test_mark_inst_err_fence"]
    assert [s.id for _, s in rules.scenarios()] == [
        "test_mark_inst_err-scenario0",
        "test_mark_inst_err_fence-scenario0",
        "test_mark_inst_err_fence-scenario1",
    ]


SEED_004_TEMPLATE = (
    "metadata: name: test_mark_inst_err description: test description definitions: entities: - entity: "
    "category: ALARM type: zabbix severity: HIGH template_id: zabbix_alarm - entity: category: RESOURCE "
    "type: nova.host template_id: host - entity: category: RESOURCE type: nova.instance template_id: instance "
    "relationships: - relationship: source: zabbix_alarm relationship_type: on target: host template_id : "
    "critical_problem_on_host - relationship: source: host target: instance relationship_type: contains "
    "template_id : host_contains_instance scenarios: - scenario: condition: critical_problem_on_host and "
    "host_contains_instance actions: - action: action_type: mark_down action_target: target: host - action: "
    "action_type: set_state action_target: target: instance properties: state: ERROR - action: action_type: "
    "set_instance_state action_target: target: instance"
)
"""The template as seed 004 prints it (its line breaks lost)."""


def test_the_test_file_is_the_seed_template_word_for_word() -> None:
    assert ENEA.read_text(encoding="utf-8").split() == SEED_004_TEMPLATE.split()
    fence_text = ENEA_FENCE.read_text(encoding="utf-8").split()
    seed_fence = "- scenario: condition: critical_problem_on_host actions: - action: action_type: fence "
    seed_fence += "action_target: target: host"
    assert fence_text[-len(seed_fence.split()) :] == seed_fence.split()
