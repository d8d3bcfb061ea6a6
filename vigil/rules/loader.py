"""Template files in, a validated :class:`~vigil.domain.rules.RuleSet` out, or every problem with its file and line.

The flow, for a set of files loaded together (Vigil's defaults, an
operator's directory):

1. each file is composed as YAML nodes and read by its format version
   (:mod:`vigil.rules.v2` for 1 and 2, :mod:`vigil.rules.v3`) into a draft:
   syntax, sections, entity types, action types and fields;
2. template names must be unique; each ``includes`` entry must name a
   definition template of the set, with no include cycle, and the included
   entities and relationships are merged in (a template id defined twice is
   refused);
3. each template's references are checked: relationship ends, relationship
   types, condition terms, Vitrage's condition rules in disjunctive normal
   form (``not`` only on relationships, a positive term, an entity common to
   every ``or`` clause), action targets;
4. across every template, the deduced alarms must not form a cycle
   (:mod:`vigil.rules.cycles`).

Any problem refuses the whole set: :class:`~vigil.rules.problems.TemplateError`
lists them all.
"""

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from vigil.domain.rules import (
    ALARM_TYPES,
    MAX_DNF_CLAUSES,
    RELATIONSHIP_TYPES,
    ActionType,
    Category,
    ConditionTooLarge,
    Entity,
    Origin,
    RuleResource,
    RuleSet,
    Scenario,
    Template,
    TemplateKind,
    common_targets,
    refs,
    to_dnf,
)
from vigil.rules.cycles import deduced_alarm_cycles
from vigil.rules.drafts import Draft, DraftAction, DraftRelationship, DraftScenario, Include, parse_version
from vigil.rules.nodes import Node, Reader
from vigil.rules.problems import Problem, TemplateError
from vigil.rules.v2 import read_v2
from vigil.rules.v3 import read_v3

DEFAULTS_DIR = Path(__file__).parent / "defaults"
"""Vigil's own behaviour, as templates (shipped as package data)."""

TEMPLATE_SUFFIXES = (".yaml", ".yml")


def template_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files to load: each file given, and every ``*.yaml``/``*.yml`` under each directory (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in TEMPLATE_SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def load_rules(paths: Iterable[Path | str], *, alarm_types: Iterable[str] = (), with_defaults: bool = False) -> RuleSet:
    """Load template files and directories together; ``with_defaults`` adds Vigil's own (:data:`DEFAULTS_DIR`).

    ``alarm_types`` are alarm entity types known besides :data:`~vigil.domain.rules.ALARM_TYPES`.
    Raises :class:`TemplateError`.
    """
    files = template_files([*([DEFAULTS_DIR] if with_defaults else []), *paths])
    sources: list[tuple[str, str]] = []
    unreadable: list[Problem] = []
    for file in files:
        try:
            sources.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            unreadable.append(Problem(str(file), 1, f"cannot read the file: {exc}"))
    try:
        rules = load_sources(sources, alarm_types=alarm_types)
    except TemplateError as exc:
        raise TemplateError([*unreadable, *exc.problems]) from None
    if unreadable:
        raise TemplateError(unreadable)
    return rules


def load_sources(sources: Iterable[tuple[str, str]], *, alarm_types: Iterable[str] = ()) -> RuleSet:
    """Load templates given as ``(file name, text)`` pairs. Raises :class:`TemplateError`."""
    known_alarms = ALARM_TYPES | frozenset(alarm_types)
    readers: list[Reader] = []
    drafts: list[Draft] = []
    for file, text in sources:
        reader = Reader(file)
        readers.append(reader)
        draft = read_draft(reader, text, known_alarms)
        if draft is not None:
            drafts.append(draft)
    problems: list[Problem] = []
    templates = _Linker(drafts, problems).link()
    problems.extend(deduced_alarm_cycles([t for t in templates if t.kind is TemplateKind.STANDARD]))
    problems.extend(p for r in readers for p in r.problems)
    if problems:
        raise TemplateError(problems)
    return RuleSet(tuple(templates))


def read_draft(reader: Reader, text: str, alarm_types: frozenset[str]) -> Draft | None:
    """One file's template as written; None when its metadata cannot be read (problems in ``reader``)."""
    root = reader.compose(text)
    if root is None:
        return None
    top = reader.entries(root, "template")
    if top is None:
        return None
    if "metadata" not in top:
        reader.error(root, "the template must contain a 'metadata' section")
        return None
    meta_key, meta_node = top.pop("metadata")
    meta = reader.mapping(meta_node, "metadata", required=("name",), allowed=("version", "name", "description", "type"))
    if meta is None or "name" not in meta:
        return None
    version = parse_version(reader, meta.get("version"))
    name = reader.scalar(meta["name"], "metadata: 'name'")
    description = (
        reader.scalar(meta["description"], "metadata: 'description'", empty=True) if "description" in meta else ""
    )
    kind = _kind(reader, meta_key, meta, version)
    if version is None or name is None or kind is None:
        return None
    draft = Draft(reader, name, description or "", version, kind, reader.origin(meta["name"]))
    read = read_v3 if version == 3 else read_v2
    read(reader, top, draft, alarm_types=alarm_types)
    return draft


def _kind(reader: Reader, meta_key: Node, meta: dict[str, Node], version: int | None) -> TemplateKind | None:
    """``metadata.type``: required from version 2 (Vitrage's rule), standard when absent before."""
    node = meta.get("type")
    if node is None:
        if version is not None and version >= 2:
            reader.error(meta_key, "metadata must contain 'type' from version 2 (standard or definition)")
            return None
        return TemplateKind.STANDARD
    text = reader.scalar(node, "metadata: 'type'")
    if text is None:
        return None
    if text == TemplateKind.EQUIVALENCE:
        reader.error(node, "equivalence templates are not supported")
        return None
    if text not in (TemplateKind.STANDARD, TemplateKind.DEFINITION):
        reader.error(node, f"unknown template type '{text}' (expected standard or definition)")
        return None
    return TemplateKind(text)


class _Linker:
    """Steps 2 and 3: names, includes, references; builds the templates."""

    def __init__(self, drafts: Sequence[Draft], problems: list[Problem]) -> None:
        self._drafts = drafts
        self._problems = problems
        self._by_name: dict[str, Draft] = {}
        self._cycles_seen: set[frozenset[str]] = set()
        self._incomplete: set[str] = set()  # templates with an include that failed

    def _excused(self, draft: Draft, tid: str) -> bool:
        """Whether an unknown ``tid`` is already explained: its definition, or an include, was refused."""
        return tid in draft.refused or draft.name in self._incomplete

    def _error(self, draft: Draft, line: int, message: str) -> None:
        self._problems.append(Problem(draft.file, line, message))

    def link(self) -> list[Template]:
        for draft in self._drafts:
            first = self._by_name.setdefault(draft.name, draft)
            if first is not draft:
                self._error(draft, draft.origin.line, f"template name '{draft.name}' is already used at {first.origin}")
        templates = []
        for draft in self._drafts:
            if self._by_name[draft.name] is not draft:
                continue
            merged = self._merge_includes(draft)
            templates.append(self._template(draft, *merged))
        return templates

    # ------------------------------------------------------------ includes

    def _definition(self, draft: Draft, include: Include) -> Draft | None:
        target = self._by_name.get(include.name)
        if target is None:
            self._error(draft, include.origin.line, f"include '{include.name}' names no definition template")
            return None
        if target.kind is not TemplateKind.DEFINITION:
            self._error(
                draft,
                include.origin.line,
                f"include '{include.name}' names a {target.kind} template ({target.origin}), not a definition template",
            )
            return None
        return target

    def _closure(self, draft: Draft, include: Include, path: list[tuple[Draft, Include]]) -> list[Draft]:
        """The definition templates ``include`` brings in, transitively (depth first); cycles reported."""
        target = self._definition(draft, include)
        if target is None:
            self._incomplete.add(path[0][0].name if path else draft.name)
            return []
        path = [*path, (draft, include)]
        names = [d.name for d, _ in path]
        if target.name in names:
            self._report_cycle(path[names.index(target.name) :])
            self._incomplete.add(path[0][0].name)
            return []
        found = [target]
        for inner in target.includes:
            found.extend(self._closure(target, inner, path))
        return found

    def _report_cycle(self, cycle: list[tuple[Draft, Include]]) -> None:
        key = frozenset(d.name for d, _ in cycle)
        if key in self._cycles_seen:
            return
        self._cycles_seen.add(key)
        chain = " → ".join([*(f"'{d.name}'" for d, _ in cycle), f"'{cycle[0][0].name}'"])
        for draft, include in cycle:
            self._error(draft, include.origin.line, f"include cycle: {chain}")

    def _merge_includes(self, draft: Draft) -> tuple[dict[str, Entity], dict[str, DraftRelationship]]:
        entities = dict(draft.entities)
        relationships = dict(draft.relationships)
        merged: set[str] = {draft.name}
        for include in draft.includes:
            for definition in self._closure(draft, include, []):
                if definition.name in merged:
                    continue
                merged.add(definition.name)
                draft.refused |= definition.refused
                for tid, entity in definition.entities.items():
                    if self._clash(draft, include, tid, entities, relationships, entity.origin):
                        entities[tid] = entity
                for tid, rel in definition.relationships.items():
                    if self._clash(draft, include, tid, entities, relationships, rel.relationship.origin):
                        relationships[tid] = rel
        return entities, relationships

    def _clash(
        self,
        draft: Draft,
        include: Include,
        tid: str,
        entities: dict[str, Entity],
        relationships: dict[str, DraftRelationship],
        origin: Origin,
    ) -> bool:
        """Whether an included definition of ``tid`` may be added (a problem when it is already defined)."""
        first = (
            entities[tid].origin
            if tid in entities
            else relationships[tid].relationship.origin
            if tid in relationships
            else None
        )
        if first is None:
            return True
        self._error(
            draft,
            include.origin.line,
            f"include '{include.name}': template_id '{tid}' defined at {origin} is already defined at {first}",
        )
        return False

    # ------------------------------------------------------------ references

    def _template(self, draft: Draft, entities: dict[str, Entity], drafted: dict[str, DraftRelationship]) -> Template:
        for rel in draft.relationships.values():
            self._check_relationship(draft, rel, entities)
        relationships = {tid: d.relationship for tid, d in drafted.items()}
        template = Template(
            name=draft.name,
            description=draft.description,
            version=draft.version,
            kind=draft.kind,
            entities=entities,
            relationships=relationships,
            scenarios=(),
            includes=tuple(i.name for i in draft.includes),
            source=draft.file,
            origin=draft.origin,
        )
        scenarios = tuple(
            self._scenario(draft, template, index, scenario) for index, scenario in enumerate(draft.scenarios)
        )
        return replace(template, scenarios=scenarios)

    def _check_relationship(self, draft: Draft, drafted: DraftRelationship, entities: dict[str, Entity]) -> None:
        rel = drafted.relationship
        for end in ("source", "target"):
            tid = getattr(rel, end)
            if tid in entities or self._excused(draft, tid):
                continue
            if drafted.inline:
                message = f"condition names unknown template id '{tid}'"
            else:
                message = f"relationship '{rel.template_id}': {end} '{tid}' is not an entity of the template"
            self._error(draft, drafted.at[end].line, message)
        if rel.relationship_type not in RELATIONSHIP_TYPES:
            known = ", ".join(sorted(RELATIONSHIP_TYPES))
            self._error(
                draft,
                drafted.at["relationship_type"].line,
                f"unknown relationship type '{rel.relationship_type}' (known: {known})",
            )

    def _scenario(self, draft: Draft, template: Template, index: int, drafted: DraftScenario) -> Scenario:
        scenario = Scenario(
            id=f"{draft.name}-scenario{index}",
            condition=drafted.condition,
            condition_text=drafted.text,
            actions=tuple(a.action for a in drafted.actions),
            origin=drafted.origin,
        )
        targets = self._check_condition(draft, template, drafted)
        for action in drafted.actions:
            self._check_action(draft, template, action, targets)
        return scenario

    def _check_condition(self, draft: Draft, template: Template, drafted: DraftScenario) -> frozenset[str] | None:
        """Problems of a condition; the entities every clause names positively (None when unknown)."""
        line = drafted.origin.line
        unknown = [r for r in refs(drafted.condition) if r not in template.entities and r not in template.relationships]
        for ref in unknown:
            if not self._excused(draft, ref):
                self._error(draft, line, f"condition names unknown template id '{ref}'")
        if unknown:
            return None
        try:
            dnf = to_dnf(drafted.condition)
        except ConditionTooLarge:
            self._error(draft, line, f"condition too large: more than {MAX_DNF_CLAUSES} clauses once expanded")
            return None
        if not dnf:
            self._error(draft, line, f"condition '{drafted.text}' can never hold")
            return None
        negated_entities = {
            lit.ref for clause in dnf for lit in clause if not lit.positive and lit.ref in template.entities
        }
        for ref in sorted(negated_entities):
            self._error(draft, line, f"'not' can stand only before a relationship, not before entity '{ref}'")
        if not any(lit.positive for clause in dnf for lit in clause):
            self._error(draft, line, "a condition cannot be made of 'not' terms only")
            return None
        targets = common_targets(template, dnf)
        if not targets:
            self._error(
                draft,
                line,
                "no entity is common to every 'or' clause of the condition: split it into several scenarios",
            )
            return None
        return targets

    def _check_action(
        self, draft: Draft, template: Template, drafted: DraftAction, targets: frozenset[str] | None
    ) -> None:
        action = drafted.action
        refs_ = {
            "target": action.target,
            "source": action.source,
            "causing_alarm": action.properties.get("causing_alarm"),
        }
        for field, tid in refs_.items():
            if tid is None or (tid not in template.entities and self._excused(draft, tid)):
                continue
            line = drafted.at[field].line
            if tid in template.relationships:
                self._error(draft, line, f"{action.type} {field} '{tid}' is a relationship; it must be an entity")
                continue
            entity = template.entities.get(tid)
            if entity is None:
                self._error(draft, line, f"{action.type} {field} '{tid}' is not an entity of the template")
                continue
            if targets is not None and field != "causing_alarm" and tid not in targets:
                self._error(
                    draft,
                    line,
                    f"{action.type} {field} '{tid}' is not in every clause of the condition "
                    f"(it must be matched by it; possible: {', '.join(sorted(targets))})",
                )
            self._check_entity_kind(draft, line, action.type, field, entity)

    def _check_entity_kind(self, draft: Draft, line: int, kind: ActionType, field: str, entity: Entity) -> None:
        tid = entity.template_id
        if kind is ActionType.ADD_CAUSAL_RELATIONSHIP:
            if entity.category is not Category.ALARM:
                self._error(draft, line, f"add_causal_relationship {field} '{tid}' must be an ALARM entity")
            return
        if field == "causing_alarm":
            if entity.category is Category.RESOURCE:
                self._error(draft, line, f"raise_alarm causing_alarm '{tid}' must be an alarm, not a resource")
            return
        if entity.category is Category.ALARM:
            self._error(draft, line, f"{kind} target '{tid}' is an alarm; it must be a resource")
            return
        wanted = {ActionType.FENCE: RuleResource.HOST, ActionType.SET_INSTANCE_STATE: RuleResource.INSTANCE}.get(kind)
        if wanted is not None and entity.resource not in (None, wanted):
            self._error(draft, line, f"{kind} target '{tid}' is a {entity.type}; it must be a {wanted}")
