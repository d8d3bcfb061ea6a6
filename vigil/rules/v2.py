"""Template format versions 1 and 2: ``definitions`` (entities and relationships), ``includes``, ``scenarios``.

::

    metadata: {version: 2, name: ..., description: ..., type: standard | definition}
    definitions:
      entities:
        - entity: {category: ALARM | RESOURCE, type: ..., template_id: ..., <property>: ...}
      relationships:
        - relationship: {source: <id>, target: <id>, relationship_type: on | contains | ..., template_id: ...}
    includes:
      - name: <a definition template's name>
    scenarios:
      - scenario:
          condition: <and/or/not over entity and relationship template ids>
          actions:
            - action:
                action_type: ...
                action_target: {target: <id>, source: <id>}
                properties: {...}

Version 1 is the same without ``metadata.type`` (no ``version`` means 1, as
in Vitrage). A definition template holds only ``definitions`` (and, a Vigil
extension, ``includes`` of other definition templates).
"""

from vigil.domain.rules import ActionType, Origin, Relationship, TemplateKind
from vigil.rules.conditions import ConditionSyntaxError, parse_condition
from vigil.rules.drafts import (
    Draft,
    DraftAction,
    DraftRelationship,
    DraftScenario,
    Include,
    action_type,
    build_action,
    build_entity,
    check_template_id,
)
from vigil.rules.nodes import Node, Reader

_TOP = ("metadata", "definitions", "includes", "scenarios")
_UNSUPPORTED = {
    "parameters": "template parameters (get_param) are not supported",
    "equivalences": "equivalence templates are not supported",
}


def read_v2(
    reader: Reader, sections: dict[str, tuple[Node, Node]], draft: Draft, *, alarm_types: frozenset[str]
) -> None:
    """Fill ``draft`` (metadata already read) from a version 1 or 2 template's sections."""
    for key, (key_node, _) in sections.items():
        if key in _UNSUPPORTED:
            reader.error(key_node, _UNSUPPORTED[key])
        elif key not in _TOP:
            reader.error(key_node, f"unknown section '{key}' (expected {', '.join(_TOP)})")
    top = {key: value for key, (_, value) in sections.items()}
    includes = top.get("includes")
    if includes is not None:
        _read_includes(reader, includes, draft)
    definitions = top.get("definitions")
    if definitions is not None:
        _read_definitions(reader, definitions, draft, alarm_types)
    elif draft.kind is TemplateKind.DEFINITION or includes is None:
        reader.error(draft.origin, "the template must contain a 'definitions' section")
    scenarios = top.get("scenarios")
    if draft.kind is TemplateKind.DEFINITION:
        if scenarios is not None:
            reader.error(sections["scenarios"][0], "a definition template cannot contain scenarios")
    elif scenarios is None:
        reader.error(draft.origin, "the template must contain a 'scenarios' section")
    else:
        _read_scenarios(reader, scenarios, draft)


def _read_includes(reader: Reader, node: Node, draft: Draft) -> None:
    for item in reader.sequence(node, "includes") or ():
        entry = reader.mapping(item, "include", required=("name",), allowed=())
        if entry is not None and "name" in entry:
            name = reader.scalar(entry["name"], "include: 'name'")
            if name is not None:
                draft.includes.append(Include(name, reader.origin(entry["name"])))


def _read_definitions(reader: Reader, node: Node, draft: Draft, alarm_types: frozenset[str]) -> None:
    sections = reader.mapping(node, "definitions", allowed=("entities", "relationships"))
    if sections is None:
        return
    if "entities" in sections:
        for item in reader.sequence(sections["entities"], "entities") or ():
            _read_entity(reader, item, draft, alarm_types)
    elif not draft.includes:
        reader.error(node, "definitions must contain 'entities'")
    if "relationships" in sections:
        for item in reader.sequence(sections["relationships"], "relationships", non_empty=False) or ():
            _read_relationship(reader, item, draft)


def _read_entity(reader: Reader, item: Node, draft: Draft, alarm_types: frozenset[str]) -> None:
    wrapper = reader.mapping(item, "entities item", required=("entity",), allowed=())
    if wrapper is None or "entity" not in wrapper:
        return
    node = wrapper["entity"]
    keys = reader.mapping(node, "entity", required=("template_id",))
    if keys is None or "template_id" not in keys:
        return
    template_id = reader.scalar(keys["template_id"], "entity: 'template_id'")
    if template_id is None or not check_template_id(reader, keys["template_id"], template_id):
        return
    if template_id in draft.entities or template_id in draft.relationships:
        reader.error(keys["template_id"], f"duplicate template_id '{template_id}'")
        return
    entity = build_entity(reader, item, template_id, keys, alarm_types=alarm_types, category_required=True)
    if entity is not None:
        draft.entities[template_id] = entity
    else:
        draft.refused.add(template_id)


_RELATIONSHIP_KEYS = ("source", "target", "relationship_type", "template_id")


def _read_relationship(reader: Reader, item: Node, draft: Draft) -> None:
    wrapper = reader.mapping(item, "relationships item", required=("relationship",), allowed=())
    if wrapper is None or "relationship" not in wrapper:
        return
    keys = reader.mapping(wrapper["relationship"], "relationship", required=_RELATIONSHIP_KEYS, allowed=())
    if keys is None or any(k not in keys for k in _RELATIONSHIP_KEYS):
        return
    values = {k: reader.scalar(keys[k], f"relationship: '{k}'") for k in _RELATIONSHIP_KEYS}
    template_id, source, target, label = (
        values["template_id"],
        values["source"],
        values["target"],
        values["relationship_type"],
    )
    if template_id is None or source is None or target is None or label is None:
        return
    if not check_template_id(reader, keys["template_id"], template_id):
        return
    if template_id in draft.entities or template_id in draft.relationships:
        reader.error(keys["template_id"], f"duplicate template_id '{template_id}'")
        return
    relationship = Relationship(template_id, source, target, label, reader.origin(item))
    at = {"source": reader.origin(keys["source"]), "target": reader.origin(keys["target"])}
    at["relationship_type"] = reader.origin(keys["relationship_type"])
    draft.relationships[template_id] = DraftRelationship(relationship, at)


def _read_scenarios(reader: Reader, node: Node, draft: Draft) -> None:
    for item in reader.sequence(node, "scenarios") or ():
        wrapper = reader.mapping(item, "scenarios item", required=("scenario",), allowed=())
        if wrapper is None or "scenario" not in wrapper:
            continue
        keys = reader.mapping(wrapper["scenario"], "scenario", required=("condition", "actions"), allowed=())
        if keys is None or "condition" not in keys or "actions" not in keys:
            continue
        text = reader.scalar(keys["condition"], "scenario: 'condition'")
        actions = [a for a in (_read_action(reader, n) for n in reader.sequence(keys["actions"], "actions") or ()) if a]
        if text is None:
            continue
        try:
            parsed = parse_condition(text, inline_relationships=False)
        except ConditionSyntaxError as exc:
            reader.error(keys["condition"], f"malformed condition '{text}': {exc}")
            continue
        draft.scenarios.append(DraftScenario(parsed.condition, text, reader.origin(keys["condition"]), actions))


def _read_action(reader: Reader, item: Node) -> DraftAction | None:
    wrapper = reader.mapping(item, "actions item", required=("action",), allowed=())
    if wrapper is None or "action" not in wrapper:
        return None
    node = wrapper["action"]
    keys = reader.mapping(node, "action", required=("action_type",), allowed=("action_target", "properties"))
    if keys is None or "action_type" not in keys:
        return None
    type_text = reader.scalar(keys["action_type"], "action: 'action_type'")
    kind = action_type(reader, keys["action_type"], type_text) if type_text is not None else None
    if kind is None:
        return None
    target = source = None
    if "action_target" in keys:
        refs = reader.mapping(keys["action_target"], "action_target", allowed=("target", "source"))
        for name, ref_node in (refs or {}).items():
            value = reader.scalar(ref_node, f"action_target: '{name}'")
            if value is None:
                return None
            if name == "target":
                target = (value, reader.origin(ref_node))
            else:
                source = (value, reader.origin(ref_node))
    properties: dict[str, tuple[str, Origin]] = {}
    inputs: dict[str, str] = {}
    if "properties" in keys:
        entries = reader.mapping(keys["properties"], "properties")
        for name, value_node in (entries or {}).items():
            if name == "input" and kind is ActionType.EXECUTE_MISTRAL:
                inputs = reader.scalars(value_node, "input") or {}
                continue
            value = reader.scalar(value_node, f"properties: '{name}'", empty=True)
            if value is not None:
                properties[name] = (value, reader.origin(value_node))
    return build_action(
        reader, item, kind, target=target, source=source, properties=properties, inputs=inputs, strict=False
    )
