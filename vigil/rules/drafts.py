"""One file read into a draft: its template as written, before includes are merged and references checked.

:mod:`vigil.rules.v2` (format versions 1 and 2) and :mod:`vigil.rules.v3`
build a :class:`Draft` with the helpers here, which hold what both versions
share: how an entity's category and type are checked, and what each action
needs (:data:`ACTION_SPECS`). :mod:`vigil.rules.loader` then resolves the
drafts' includes and checks every reference, keeping the line of each field
it may have to complain about.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from vigil.domain.rules import (
    RESOURCE_TYPES,
    Action,
    ActionType,
    Category,
    Condition,
    Entity,
    Origin,
    Relationship,
    TemplateKind,
)
from vigil.rules.conditions import InlineRelationship
from vigil.rules.nodes import Node, Reader

TEMPLATE_ID = re.compile(r"_*[A-Za-z]\w*")
RESERVED_IDS = frozenset({"and", "or", "not", "AND", "OR", "NOT"})
SUPPORTED_VERSIONS = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What an action must and may carry besides its type."""

    target: bool  # a target entity is required
    source: bool  # a source entity is required (add_causal_relationship)
    required: tuple[str, ...] = ()  # properties
    optional: tuple[str, ...] = ()


ACTION_SPECS: Mapping[ActionType, ActionSpec] = {
    ActionType.RAISE_ALARM: ActionSpec(True, False, ("alarm_name", "severity"), ("causing_alarm",)),
    ActionType.SET_STATE: ActionSpec(True, False, ("state",)),
    ActionType.MARK_DOWN: ActionSpec(True, False),
    ActionType.ADD_CAUSAL_RELATIONSHIP: ActionSpec(True, True),
    ActionType.EXECUTE_MISTRAL: ActionSpec(False, False, ("workflow",), ("input",)),
    ActionType.SET_INSTANCE_STATE: ActionSpec(True, False, (), ("state",)),  # Enea's: ERROR when no state
    ActionType.FENCE: ActionSpec(True, False),
}


@dataclass(slots=True)
class DraftAction:
    action: Action
    at: dict[str, Origin]  # the line of each reference field: target, source, causing_alarm


@dataclass(slots=True)
class DraftScenario:
    condition: Condition
    text: str
    origin: Origin  # the condition's line
    actions: list[DraftAction]
    inline: tuple[InlineRelationship, ...] = ()


@dataclass(slots=True)
class DraftRelationship:
    relationship: Relationship
    at: dict[str, Origin]  # source, target, relationship_type
    inline: bool = False  # written in a version 3 condition


@dataclass(frozen=True, slots=True)
class Include:
    name: str
    origin: Origin


@dataclass(slots=True)
class Draft:
    """A template as its file writes it. ``reader`` collects the file's problems."""

    reader: Reader
    name: str
    description: str
    version: int
    kind: TemplateKind
    origin: Origin  # the line of metadata.name
    entities: dict[str, Entity] = field(default_factory=dict)
    relationships: dict[str, DraftRelationship] = field(default_factory=dict)
    scenarios: list[DraftScenario] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # template ids whose definition was refused (no cascade)

    @property
    def file(self) -> str:
        return self.reader.file


def check_template_id(reader: Reader, node: Node, template_id: str) -> bool:
    if TEMPLATE_ID.fullmatch(template_id) is None or template_id in RESERVED_IDS:
        reader.error(
            node,
            f"template_id '{template_id}' must be a name of letters, digits and '_' that starts with a letter "
            "(after any '_') and is not and/or/not",
        )
        return False
    return True


def build_entity(
    reader: Reader,
    node: Node,
    template_id: str,
    keys: dict[str, Node],
    *,
    alarm_types: frozenset[str],
    category_required: bool,
) -> Entity | None:
    """An entity from its written keys (``category`` and ``type`` among them); None after a problem.

    ``node`` is where the entity starts (its origin); ``keys`` its key/value nodes.
    """
    properties = reader.values(keys, f"entity '{template_id}'")
    props = dict(properties)
    category_text = props.pop("category", None)
    type_ = props.pop("type", None) or None
    props.pop("template_id", None)
    ok = True
    category: Category | None = None
    if category_text is None or not category_text:
        if category_required:
            reader.error(node, f"entity '{template_id}' must contain 'category' (ALARM or RESOURCE)")
            ok = False
    elif category_text in Category.__members__.values():
        category = Category(category_text)
    else:
        reader.error(
            keys["category"], f"entity '{template_id}': unknown category '{category_text}' (expected ALARM or RESOURCE)"
        )
        ok = False
    if type_ is not None and ok:
        category = _check_type(reader, keys["type"], template_id, type_, category, alarm_types)
        ok = category is not None
    for key, value in props.items():
        if key.lower().endswith(".regex"):
            try:
                re.compile(value)
            except re.error as exc:
                reader.error(keys[key], f"entity '{template_id}': invalid regular expression in '{key}': {exc}")
                ok = False
    if not ok:
        return None
    resource = RESOURCE_TYPES.get(type_) if type_ is not None and category is Category.RESOURCE else None
    return Entity(template_id, category, type_, resource, props, reader.origin(node))


def _check_type(
    reader: Reader, node: Node, template_id: str, type_: str, category: Category | None, alarm_types: frozenset[str]
) -> Category | None:
    """The entity's category given its type (inferred when not written), or None (a problem recorded)."""
    is_resource, is_alarm = type_ in RESOURCE_TYPES, type_ in alarm_types
    if category is Category.RESOURCE and is_resource:
        return category
    if category is Category.ALARM and is_alarm:
        return category
    if category is None and (is_resource or is_alarm):
        return Category.RESOURCE if is_resource else Category.ALARM
    if category is Category.RESOURCE or (category is None and not is_alarm):
        known = ", ".join(sorted(RESOURCE_TYPES))
        reader.error(node, f"entity '{template_id}': unknown resource type '{type_}' (known: {known})")
    else:
        known = ", ".join(sorted(alarm_types))
        reader.error(node, f"entity '{template_id}': unknown alarm type '{type_}' (known: {known})")
    return None


def action_type(reader: Reader, node: Node, text: str) -> ActionType | None:
    if text in ActionType.__members__.values():
        return ActionType(text)
    known = ", ".join(ActionType)
    reader.error(node, f"unknown action type '{text}' (known: {known})")
    return None


def build_action(
    reader: Reader,
    node: Node,
    kind: ActionType,
    *,
    target: tuple[str, Origin] | None,
    source: tuple[str, Origin] | None,
    properties: dict[str, tuple[str, Origin]],
    inputs: dict[str, str],
    strict: bool,
) -> DraftAction | None:
    """An action from its fields; ``strict`` (version 3) refuses properties its type does not take."""
    spec = ACTION_SPECS[kind]
    ok = True
    if spec.target and target is None:
        reader.error(node, f"{kind} action must name a target")
        ok = False
    if spec.source and source is None:
        reader.error(node, f"{kind} action must name a source")
        ok = False
    if not spec.source and source is not None:
        reader.error(source[1], f"{kind} action takes no source")
        ok = False
    for name in spec.required:
        if name not in properties or not properties[name][0].strip():
            reader.error(node, f"{kind} action must contain '{name}'")
            ok = False
    if strict or kind is ActionType.EXECUTE_MISTRAL:
        for name, (_, origin) in properties.items():
            if name not in spec.required and name not in spec.optional:
                known = ", ".join((*spec.required, *spec.optional)) or "none"
                reader.error(origin, f"{kind} action: unknown property '{name}' (expected {known})")
                ok = False
    if not ok:
        return None
    at = {name: origin for name, (_, origin) in properties.items() if name == "causing_alarm"}
    if target is not None:
        at["target"] = target[1]
    if source is not None:
        at["source"] = source[1]
    action = Action(
        type=kind,
        target=target[0] if target else None,
        source=source[0] if source else None,
        properties={name: value for name, (value, _) in properties.items()},
        origin=reader.origin(node),
        inputs=inputs,
    )
    return DraftAction(action, at)


def parse_version(reader: Reader, node: Node | None) -> int | None:
    """``metadata.version``: 1 when absent (Vitrage's default)."""
    if node is None:
        return 1
    text = reader.scalar(node, "metadata: 'version'")
    if text is None:
        return None
    if text.strip() in {str(v) for v in SUPPORTED_VERSIONS}:
        return int(text)
    reader.error(node, f"unsupported template version '{text}' (supported: 1, 2, 3)")
    return None
