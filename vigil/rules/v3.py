"""Template format version 3: entities as a mapping, relationships written inline in conditions.

::

    metadata: {version: 3, name: ..., type: standard, description: ...}
    entities:
      host: {type: nova.host}
      host_alarm: {category: ALARM, type: zabbix, name: host down}
    scenarios:
      - condition: host_alarm [on] host AND host [contains] instance
        actions:
          - set_state: {target: instance, state: ERROR}
          - raise_alarm: {target: instance, alarm_name: ..., severity: ..., causing_alarm: host_alarm}
          - mark_down: {target: host}
          - add_causal_relationship: {source: host_alarm, target: instance_alarm}
          - execute_mistral: {workflow: ..., input: {...}}

As in Vitrage, ``metadata.type`` is required and only ``standard``; an
entity's ``category`` may be left out when its ``type`` tells it; an action's
keys are exactly those its type takes.
"""

from vigil.domain.rules import ActionType, Origin, Relationship, TemplateKind
from vigil.rules.conditions import ConditionSyntaxError, parse_condition
from vigil.rules.drafts import (
    Draft,
    DraftAction,
    DraftRelationship,
    DraftScenario,
    action_type,
    build_action,
    build_entity,
    check_template_id,
)
from vigil.rules.nodes import Node, Reader

_TOP = ("metadata", "entities", "scenarios")
_UNSUPPORTED = {
    "parameters": "template parameters (get_param) are not supported",
    "includes": "version 3 templates cannot include definition templates (Vitrage's rule): use version 2",
    "definitions": (
        "version 3 has no 'definitions' section: entities are a mapping under 'entities', "
        "relationships are written in conditions ('a [on] b')"
    ),
}


def read_v3(
    reader: Reader, sections: dict[str, tuple[Node, Node]], draft: Draft, *, alarm_types: frozenset[str]
) -> None:
    """Fill ``draft`` (metadata already read) from a version 3 template's sections."""
    for key, (key_node, _) in sections.items():
        if key in _UNSUPPORTED:
            reader.error(key_node, _UNSUPPORTED[key])
        elif key not in _TOP:
            reader.error(key_node, f"unknown section '{key}' (expected {', '.join(_TOP)})")
    top = {key: value for key, (_, value) in sections.items()}
    if draft.kind is not TemplateKind.STANDARD:
        reader.error(draft.origin, f"version 3 templates are of type standard only, not {draft.kind}")
    if "entities" in top:
        _read_entities(reader, top["entities"], draft, alarm_types)
    else:
        reader.error(draft.origin, "the template must contain an 'entities' section")
    if "scenarios" in top:
        _read_scenarios(reader, top["scenarios"], draft)
    else:
        reader.error(draft.origin, "the template must contain a 'scenarios' section")


def _read_entities(reader: Reader, node: Node, draft: Draft, alarm_types: frozenset[str]) -> None:
    entries = reader.entries(node, "entities")
    if entries is None:
        return
    if not entries:
        reader.error(node, "entities must not be empty")
    for template_id, (key, body) in entries.items():
        keys = reader.mapping(body, f"entity '{template_id}'")
        if keys is None or not check_template_id(reader, key, template_id):
            draft.refused.add(template_id)
            continue
        entity = build_entity(reader, key, template_id, keys, alarm_types=alarm_types, category_required=False)
        if entity is not None:
            draft.entities[template_id] = entity
        else:
            draft.refused.add(template_id)


def _read_scenarios(reader: Reader, node: Node, draft: Draft) -> None:
    for item in reader.sequence(node, "scenarios") or ():
        keys = reader.mapping(item, "scenario", required=("condition", "actions"), allowed=())
        if keys is None or "condition" not in keys or "actions" not in keys:
            continue
        text = reader.scalar(keys["condition"], "scenario: 'condition'")
        actions = [a for a in (_read_action(reader, n) for n in reader.sequence(keys["actions"], "actions") or ()) if a]
        if text is None:
            continue
        origin = reader.origin(keys["condition"])
        try:
            parsed = parse_condition(text, inline_relationships=True)
        except ConditionSyntaxError as exc:
            reader.error(keys["condition"], f"malformed condition '{text}': {exc}")
            continue
        for inline in parsed.inline:
            if inline.ref not in draft.relationships:
                relationship = Relationship(inline.ref, inline.source, inline.target, inline.relationship_type, origin)
                at = {"source": origin, "target": origin, "relationship_type": origin}
                draft.relationships[inline.ref] = DraftRelationship(relationship, at, inline=True)
        draft.scenarios.append(DraftScenario(parsed.condition, text, origin, actions, parsed.inline))


def _read_action(reader: Reader, item: Node) -> DraftAction | None:
    entry = reader.mapping(item, "action")
    if entry is None:
        return None
    if len(entry) != 1:
        reader.error(
            item, "an action is a mapping with one key, its type (e.g. '- set_state: {target: ..., state: ...}')"
        )
        return None
    ((type_text, body),) = entry.items()
    kind = action_type(reader, item, type_text)
    keys = reader.mapping(body, type_text) if kind is not None else None
    if kind is None or keys is None:
        return None
    target = source = None
    properties: dict[str, tuple[str, Origin]] = {}
    inputs: dict[str, str] = {}
    for name, value_node in keys.items():
        if name == "input" and kind is ActionType.EXECUTE_MISTRAL:
            inputs = reader.scalars(value_node, "input") or {}
            continue
        value = reader.scalar(value_node, f"{type_text}: '{name}'", empty=name not in ("target", "source"))
        if value is None:
            return None
        if name == "target":
            target = (value, reader.origin(value_node))
        elif name == "source":
            source = (value, reader.origin(value_node))
        else:
            properties[name] = (value, reader.origin(value_node))
    return build_action(
        reader, item, kind, target=target, source=source, properties=properties, inputs=inputs, strict=True
    )
