"""Rule templates: the pure model of a loaded, validated Vitrage template.

Vigil's inspector rules are written as OpenStack Vitrage templates (format
versions 1, 2 and 3). :mod:`vigil.rules` reads the YAML files, checks them
and builds the objects below; nothing here reads a file or knows YAML.

A :class:`Template` names its :class:`Entity` vertices (a resource or an
alarm, by ``template_id``) and :class:`Relationship` edges between them
(``source [relationship_type] target``), and holds :class:`Scenario` rules:
when the :data:`Condition` holds, do the :class:`Action` list; when it stops
holding, undo them (Vitrage's do/undo). A condition is ``and``/``or``/``not``
over :class:`Term` references to entities or relationships; Vitrage
evaluates it in disjunctive normal form (:func:`to_dnf`), where ``not`` may
only stand before a relationship.

Version 3 writes relationships inline in the condition (``alarm [on] host``);
the loader turns each into a :class:`Relationship` named as Vitrage names it,
``alarm__on__host``, so that conditions of every version reference template
ids alone. Included definition templates are merged in: a template's
``entities`` and ``relationships`` are all it uses.

The known entity types, relationship types and actions are the constants
:data:`RESOURCE_TYPES`, :data:`ALARM_TYPES`, :data:`RELATIONSHIP_TYPES` and
:class:`ActionType`, here and nowhere else.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

# ---------------------------------------------------------------- known names


class TemplateKind(StrEnum):
    """``metadata.type``: a standard template has scenarios; a definition template only definitions to include."""

    STANDARD = "standard"
    DEFINITION = "definition"
    EQUIVALENCE = "equivalence"  # Vitrage's; refused by the loader (not supported)


class Category(StrEnum):
    ALARM = "ALARM"
    RESOURCE = "RESOURCE"


class RuleResource(StrEnum):
    """The Vigil resource a template's resource entity stands for."""

    CLUSTER = "cluster"
    ZONE = "zone"
    SWITCH = "switch"
    HOST = "host"
    PROJECT = "project"
    SERVER_GROUP = "server_group"
    INSTANCE = "instance"
    PORT = "port"


RESOURCE_TYPES: Mapping[str, RuleResource] = {
    # Vitrage's datasource names
    "openstack.cluster": RuleResource.CLUSTER,
    "nova.zone": RuleResource.ZONE,
    "nova.host": RuleResource.HOST,
    "nova.instance": RuleResource.INSTANCE,
    "neutron.port": RuleResource.PORT,
    "switch": RuleResource.SWITCH,  # Vitrage's static (physical) datasource
    "network.switch": RuleResource.SWITCH,  # Vigil's event family name
    "nova.server_group": RuleResource.SERVER_GROUP,
    # Vigil's own resource type names
    "cluster": RuleResource.CLUSTER,
    "zone": RuleResource.ZONE,
    "host": RuleResource.HOST,
    "instance": RuleResource.INSTANCE,
    "port": RuleResource.PORT,
    "server_group": RuleResource.SERVER_GROUP,
    "project": RuleResource.PROJECT,
}
"""Resource entity types a template may name, and the Vigil resource each means."""

DEDUCED_ALARM_TYPE = "vitrage"
"""The type of an alarm a rule raises (``raise_alarm``): Vitrage calls its deduced alarms ``vitrage``."""

ALARM_TYPES: frozenset[str] = frozenset({"zabbix", DEDUCED_ALARM_TYPE, "prometheus", "doctor", "vigil"})
"""Alarm entity types known without configuration (the loader takes more)."""

RELATIONSHIP_TYPES: frozenset[str] = frozenset({"on", "contains", "attached", "causes", "comprised"})
"""Relationship (edge) labels: ``alarm [on] resource``, ``host [contains] instance``,
``port [attached] instance``, ``switch [attached] host``, ``alarm [causes] alarm``."""


class ActionType(StrEnum):
    """Vitrage's five actions and Enea's two (``set_instance_state``, ``fence``)."""

    RAISE_ALARM = "raise_alarm"
    SET_STATE = "set_state"
    MARK_DOWN = "mark_down"
    ADD_CAUSAL_RELATIONSHIP = "add_causal_relationship"
    EXECUTE_MISTRAL = "execute_mistral"
    SET_INSTANCE_STATE = "set_instance_state"
    FENCE = "fence"


# ---------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was written: a file and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Entity:
    """A vertex the condition matches: a resource or an alarm.

    ``category`` is None when a version 3 entity neither says it nor has a
    ``type`` that tells it (it then matches either). ``resource`` is the
    Vigil resource of a resource ``type`` (None for alarms and untyped
    entities). ``properties`` holds every other key as written (``name``,
    ``severity``, ``state``, ``rawtext``, ``name.regex``, ...), values as
    their YAML text.
    """

    template_id: str
    category: Category | None
    type: str | None
    resource: RuleResource | None
    properties: Mapping[str, str]
    origin: Origin

    @property
    def name(self) -> str | None:
        return self.properties.get("name")

    @property
    def is_alarm(self) -> bool:
        return self.category is Category.ALARM


@dataclass(frozen=True, slots=True)
class Relationship:
    """An edge the condition matches: ``source [relationship_type] target`` (entity template ids)."""

    template_id: str
    source: str
    target: str
    relationship_type: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class Term:
    """A reference to an entity or relationship, by template id: true when the graph has a match for it."""

    ref: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: "Condition"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple["Condition", ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple["Condition", ...]


Condition = Term | Not | And | Or


@dataclass(frozen=True, slots=True)
class Action:
    """One action of a scenario.

    ``target`` (and ``source`` for ``add_causal_relationship``) are entity
    template ids. ``target`` is None only for ``execute_mistral`` written
    without one: Vitrage then acts on an entity common to every ``or``
    clause (:func:`common_targets`). ``properties`` are the action's
    parameters as written (``state``, ``alarm_name``, ``severity``,
    ``causing_alarm``, ``workflow``, ...); ``inputs`` is ``execute_mistral``'s
    ``input`` block.
    """

    type: ActionType
    target: str | None
    source: str | None
    properties: Mapping[str, str]
    origin: Origin
    inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scenario:
    """``id`` is Vitrage's: ``<template name>-scenario<index>``; ``condition_text`` as written."""

    id: str
    condition: Condition
    condition_text: str
    actions: tuple[Action, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class Template:
    """One template file, with its includes merged into ``entities`` and ``relationships``."""

    name: str
    description: str
    version: int
    kind: TemplateKind
    entities: Mapping[str, Entity]
    relationships: Mapping[str, Relationship]
    scenarios: tuple[Scenario, ...]
    includes: tuple[str, ...]
    source: str
    origin: Origin

    def entity_ids(self, ref: str) -> tuple[str, ...]:
        """The entities a term names: itself, or a relationship's source and target."""
        rel = self.relationships.get(ref)
        if rel is not None:
            return (rel.source, rel.target)
        return (ref,) if ref in self.entities else ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every template loaded together: the standard ones hold the rules."""

    templates: tuple[Template, ...]

    @property
    def standard(self) -> tuple[Template, ...]:
        return tuple(t for t in self.templates if t.kind is TemplateKind.STANDARD)

    @property
    def definitions(self) -> tuple[Template, ...]:
        return tuple(t for t in self.templates if t.kind is TemplateKind.DEFINITION)

    def scenarios(self) -> Iterator[tuple[Template, Scenario]]:
        for template in self.standard:
            for scenario in template.scenarios:
                yield template, scenario

    def by_name(self, name: str) -> Template | None:
        return next((t for t in self.templates if t.name == name), None)


# ---------------------------------------------------------------- conditions


class Literal(NamedTuple):
    """A term of a DNF clause: ``ref`` is an entity or relationship template id; ``positive`` False means ``not``."""

    ref: str
    positive: bool


Clause = tuple[Literal, ...]
"""A conjunction of literals."""

Dnf = tuple[Clause, ...]
"""A disjunction of clauses: ``(a and b) or (a and not c)`` is ``((a, b), (a, ¬c))``."""


def refs(condition: Condition) -> tuple[str, ...]:
    """The template ids a condition references, in order of first appearance."""
    seen: dict[str, None] = {}

    def walk(c: Condition) -> None:
        match c:
            case Term(ref):
                seen.setdefault(ref)
            case Not(operand):
                walk(operand)
            case And(operands) | Or(operands):
                for o in operands:
                    walk(o)

    walk(condition)
    return tuple(seen)


def holds(condition: Condition, truth: Callable[[str], bool]) -> bool:
    """Whether ``condition`` holds when each template id ``ref`` is ``truth(ref)``."""
    match condition:
        case Term(ref):
            return truth(ref)
        case Not(operand):
            return not holds(operand, truth)
        case And(operands):
            return all(holds(o, truth) for o in operands)
        case Or(operands):
            return any(holds(o, truth) for o in operands)


def dnf_holds(dnf: Dnf, truth: Callable[[str], bool]) -> bool:
    """Whether a DNF holds when each template id ``ref`` is ``truth(ref)``."""
    return any(all(truth(lit.ref) == lit.positive for lit in clause) for clause in dnf)


def to_dnf(condition: Condition) -> Dnf:
    """``condition`` in disjunctive normal form, as Vitrage evaluates it.

    ``not`` is pushed down to the terms (De Morgan), ``and`` distributed over
    ``or``. Within a clause a repeated literal appears once (first order kept);
    a clause with both ``x`` and ``not x`` can never hold and is dropped, and
    so is a clause equal (as a set) to an earlier one. The result holds for
    exactly the truth assignments the condition holds for; it is empty when
    the condition can never hold. Its size can grow exponentially with the
    condition's: over :data:`MAX_DNF_CLAUSES` clauses (before dropping any),
    :class:`ConditionTooLarge` is raised.
    """
    clauses: list[Clause] = []
    seen: set[frozenset[Literal]] = set()
    for raw in _dnf(condition, True):
        lits = tuple(dict.fromkeys(raw))
        as_set = frozenset(lits)
        if any(Literal(lit.ref, not lit.positive) in as_set for lit in lits) or as_set in seen:
            continue
        seen.add(as_set)
        clauses.append(lits)
    return tuple(clauses)


MAX_DNF_CLAUSES = 256


class ConditionTooLarge(ValueError):
    """A condition whose disjunctive normal form has more than :data:`MAX_DNF_CLAUSES` clauses."""


def _dnf(condition: Condition, positive: bool) -> list[Clause]:
    match condition:
        case Term(ref):
            return [(Literal(ref, positive),)]
        case Not(operand):
            return _dnf(operand, not positive)
        case And(operands) if positive:
            return _product([_dnf(o, True) for o in operands])
        case Or(operands) if not positive:  # not (a or b) = not a and not b
            return _product([_dnf(o, False) for o in operands])
        case And(operands) | Or(operands):  # a or b; not (a and b) = not a or not b
            return _bounded([clause for o in operands for clause in _dnf(o, positive)])
    raise AssertionError(condition)  # pragma: no cover


def _product(parts: Iterable[list[Clause]]) -> list[Clause]:
    result: list[Clause] = [()]
    for part in parts:
        result = _bounded([left + right for left in result for right in part])
    return result


def _bounded(clauses: list[Clause]) -> list[Clause]:
    if len(clauses) > MAX_DNF_CLAUSES:
        raise ConditionTooLarge(f"more than {MAX_DNF_CLAUSES} clauses in disjunctive normal form")
    return clauses


def common_targets(template: Template, dnf: Dnf) -> frozenset[str]:
    """The entities named by a positive literal of every clause: Vitrage's possible default action targets.

    Vitrage refuses a condition for which this is empty ("condition must
    contain a common entity for all 'or' clauses").
    """
    common: frozenset[str] | None = None
    for clause in dnf:
        ids = frozenset(e for lit in clause if lit.positive for e in template.entity_ids(lit.ref))
        common = ids if common is None else common & ids
    return common or frozenset()
