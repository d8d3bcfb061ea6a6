"""Templates in Vitrage's published format (versions 2 and 3, like Vitrage's own samples) and Vigil's defaults."""

from pathlib import Path

import pytest

from vigil.domain.rules import (
    ActionType,
    And,
    Category,
    Literal,
    Not,
    Or,
    RuleResource,
    RuleSet,
    Template,
    TemplateKind,
    Term,
    common_targets,
    to_dnf,
)
from vigil.rules import DEFAULTS_DIR, load_rules

from .conftest import TEMPLATES, line_of


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules([TEMPLATES])


def _template(rules: RuleSet, name: str) -> Template:
    template = rules.by_name(name)
    assert template is not None
    return template


def test_every_sample_loads_together(rules: RuleSet) -> None:
    assert sorted(t.name for t in rules.standard) == [
        "agent_unreachable",
        "host_down_causal",
        "instance_connectivity",
        "nic_down_recovery",
        "standby_lost",
        "test_mark_inst_err",
        "test_mark_inst_err_fence",
    ]
    assert [t.name for t in rules.definitions] == ["vigil_definitions"]
    assert {t.version for t in rules.templates} == {1, 2, 3}


def test_a_causal_relationship_links_the_host_alarm_to_the_instance_alarm(rules: RuleSet) -> None:
    template = _template(rules, "host_down_causal")
    assert template.version == 2
    third = template.scenarios[2]
    assert third.condition == And(
        (Term("host_down_alarm_on_host"), Term("host_contains_instance"), Term("alarm_on_instance"))
    )
    causal, mark_down = third.actions
    assert (causal.type, causal.source, causal.target) == (
        ActionType.ADD_CAUSAL_RELATIONSHIP,
        "host_down_alarm",
        "instance_alarm",
    )
    assert template.entities["host_down_alarm"].category is Category.ALARM
    assert template.entities["instance_alarm"].name == "Instance Down"
    assert (mark_down.type, mark_down.target) == (ActionType.MARK_DOWN, "instance")
    raise_alarm = template.scenarios[1].actions[0]
    assert raise_alarm.properties == {"alarm_name": "Instance Down", "severity": "critical"}


def test_not_negates_a_relationship_in_the_dnf(rules: RuleSet) -> None:
    template = _template(rules, "standby_lost")
    (scenario,) = template.scenarios
    assert scenario.condition == And(
        (
            Term("failed_is_down"),
            Term("group_contains_failed"),
            Term("group_contains_peer"),
            Not(Term("peer_has_alarm")),
        )
    )
    (clause,) = to_dnf(scenario.condition)
    assert Literal("peer_has_alarm", False) in clause
    assert "peer_has_alarm" in template.relationships
    assert template.entities["peer_alarm"].category is Category.ALARM
    assert template.entities["peer_alarm"].type is None  # any alarm
    assert template.entities["group"].resource is RuleResource.SERVER_GROUP
    (action,) = scenario.actions
    assert action.properties["causing_alarm"] == "down_alarm"
    assert action.target == "group"


def test_version_3_relationships_are_written_inline(rules: RuleSet) -> None:
    template = _template(rules, "instance_connectivity")
    assert template.version == 3
    path = Path(template.source)
    condition_line = line_of(path, "- condition:")
    assert set(template.relationships) == {
        "host_alarm__on__host",
        "zone_alarm__on__zone",
        "zone__contains__host",
        "host__contains__instance",
    }
    rel = template.relationships["zone__contains__host"]
    assert (rel.source, rel.relationship_type, rel.target, rel.origin.line) == (
        "zone",
        "contains",
        "host",
        condition_line,
    )
    (scenario,) = template.scenarios
    assert scenario.condition == And(
        (
            Or((Term("host_alarm__on__host"), And((Term("zone_alarm__on__zone"), Term("zone__contains__host"))))),
            Term("host__contains__instance"),
        )
    )
    dnf = to_dnf(scenario.condition)
    assert dnf == (
        (Literal("host_alarm__on__host", True), Literal("host__contains__instance", True)),
        (
            Literal("zone_alarm__on__zone", True),
            Literal("zone__contains__host", True),
            Literal("host__contains__instance", True),
        ),
    )
    assert common_targets(template, dnf) == {"host", "instance"}
    # a version 3 entity's category follows from its type
    assert template.entities["host_alarm"].category is Category.ALARM
    assert template.entities["zone"].category is Category.RESOURCE
    assert template.entities["zone"].resource is RuleResource.ZONE
    raise_alarm, set_state = scenario.actions
    assert raise_alarm.properties == {"alarm_name": "instance_connectivity_problem", "severity": "CRITICAL"}
    assert (set_state.target, set_state.properties) == ("instance", {"state": "SUBOPTIMAL"})


def test_version_3_fence_mistral_and_causal_actions(rules: RuleSet) -> None:
    template = _template(rules, "nic_down_recovery")
    first, second = template.scenarios
    assert first.condition == And((Term("nic_alarm__on__host"), Not(Term("maintenance_alarm__on__host"))))
    fence, mistral = first.actions
    assert (fence.type, fence.target) == (ActionType.FENCE, "host")
    assert mistral.type is ActionType.EXECUTE_MISTRAL
    assert mistral.target is None  # Vitrage picks an entity common to the clauses
    assert mistral.properties == {"workflow": "evacuate_host"}
    assert mistral.inputs == {"host_name": "get_attr(host, name)", "retries": "5"}
    assert common_targets(template, to_dnf(first.condition)) == {"nic_alarm", "host"}
    causal, set_instance_state = second.actions
    assert (causal.source, causal.target) == ("nic_alarm", "instance_alarm")
    assert (set_instance_state.type, set_instance_state.target) == (ActionType.SET_INSTANCE_STATE, "instance")
    assert template.entities["nic_alarm"].properties == {"name": "NodeNetworkInterfaceDown", "severity": "critical"}


def test_an_include_merges_a_definition_template(rules: RuleSet) -> None:
    template = _template(rules, "agent_unreachable")
    definitions = _template(rules, "vigil_definitions")
    assert definitions.kind is TemplateKind.DEFINITION
    assert definitions.scenarios == ()
    assert template.includes == ("vigil_definitions",)
    assert set(template.entities) == {"port", "agent_unreachable", "host", "instance"}
    assert set(template.relationships) == {
        "port_attached_instance",
        "agent_unreachable_on_host",
        "host_contains_instance",
    }
    assert template.entities["host"].origin.file == definitions.source  # defined there, used here
    assert template.entities["agent_unreachable"].properties == {
        "rawtext": "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes"  # Vitrage's Zabbix alarm property
    }
    assert [a.target for s in template.scenarios for a in s.actions] == ["instance", "port"]


def test_an_include_needs_its_definition_template_in_the_set() -> None:
    from vigil.rules import TemplateError

    with pytest.raises(TemplateError, match="include 'vigil_definitions' names no definition template"):
        load_rules([TEMPLATES / "agent_unreachable.yaml"])
    loaded = load_rules([TEMPLATES / "agent_unreachable.yaml", TEMPLATES / "vigil_definitions.yaml"])
    assert [t.name for t in loaded.templates] == ["agent_unreachable", "vigil_definitions"]


# ---------------------------------------------------------------- Vigil's defaults


@pytest.fixture(scope="module")
def defaults() -> RuleSet:
    return load_rules([], with_defaults=True)


def _actions(template: Template) -> list[tuple[ActionType, str | None, dict[str, str]]]:
    return [(a.type, a.target, dict(a.properties)) for s in template.scenarios for a in s.actions]


def test_the_defaults_are_version_3_templates_shipped_with_vigil(defaults: RuleSet) -> None:
    assert sorted(p.name for p in DEFAULTS_DIR.glob("*.yaml")) == [
        "host_down.yaml",
        "server_group.yaml",
        "switch_down.yaml",
    ]
    assert [t.name for t in defaults.templates] == [
        "vigil_host_down",
        "vigil_server_group_degraded",
        "vigil_switch_down",
    ]
    assert {t.version for t in defaults.templates} == {3}


def test_a_host_down_marks_it_down_and_takes_its_instances_and_ports_down(defaults: RuleSet) -> None:
    template = _template(defaults, "vigil_host_down")
    # by Vigil's event type, whatever the monitor named the alarm (a Zabbix trigger, a Prometheus alertname)
    assert template.entities["host_down_alarm"].properties == {"event_type": "compute.host.down"}
    assert _actions(template) == [
        (ActionType.MARK_DOWN, "host", {}),
        (ActionType.SET_STATE, "instance", {"state": "ERROR"}),
        (
            ActionType.RAISE_ALARM,
            "instance",
            {"alarm_name": "instance.down", "severity": "CRITICAL", "causing_alarm": "host_down_alarm"},
        ),
        (ActionType.SET_STATE, "port", {"state": "DOWN"}),
    ]
    assert template.scenarios[2].condition == And(
        (Term("host_down_alarm__on__host"), Term("host__contains__instance"), Term("port__attached__instance"))
    )


def test_a_member_down_raises_the_server_group_alarm(defaults: RuleSet) -> None:
    template = _template(defaults, "vigil_server_group_degraded")
    assert template.entities["instance_down"].name == "instance.down"  # what vigil_host_down raises
    assert template.entities["group"].resource is RuleResource.SERVER_GROUP
    assert _actions(template) == [
        (
            ActionType.RAISE_ALARM,
            "group",
            {"alarm_name": "server_group.degraded", "severity": "MAJOR", "causing_alarm": "instance_down"},
        )
    ]


def test_a_switch_down_makes_the_hosts_behind_it_unreachable(defaults: RuleSet) -> None:
    template = _template(defaults, "vigil_switch_down")
    assert template.entities["switch"].resource is RuleResource.SWITCH
    assert template.relationships["switch__attached__host"].relationship_type == "attached"
    assert _actions(template)[0] == (ActionType.SET_STATE, "host", {"state": "UNKNOWN"})
    assert (ActionType.MARK_DOWN, "host", {}) not in _actions(template)  # cut off, not failed
    assert (ActionType.SET_STATE, "port", {"state": "DOWN"}) in _actions(template)


def test_the_defaults_load_with_every_sample(defaults: RuleSet) -> None:
    both = load_rules([TEMPLATES], with_defaults=True)
    assert len(both.templates) == len(defaults.templates) + len(load_rules([TEMPLATES]).templates)
