"""Rule templates evaluated on the entity graph, with Vitrage's do/undo.

Each scenario's condition, in disjunctive normal form, is matched against
the graph (:mod:`vigil.inspector.rule_graph`): a clause holds for a binding
of its template ids to vertices that satisfies its positive literals (the
entities match, the relationships are edges) and none of its negated ones.
An action, aimed at its target's vertex, is *done* when the first binding
supports it and *undone* when the last one stops holding, as Vitrage does:

* ``raise_alarm``: a deduced alarm (kind ``deduced``, its ``alarm_name``,
  severity, owner's project for an instance or group) on the target,
  cleared on undo; it is an alarm vertex itself, so rules chain;
* ``set_state`` / ``set_instance_state``: an instance's state (``ERROR``
  by default), a port's data plane, a host's ``DOWN``/``ERROR`` (forced
  down) or ``UNKNOWN`` (unreachable); the previous value comes back on undo;
* ``mark_down``: the host forced down and disabled (``rule: <template>``);
  undone, it is up and enabled again if the rule had disabled it;
* ``add_causal_relationship``: a ``causes`` edge between two alarms;
* ``fence`` and ``execute_mistral``: handed to :class:`RuleActions` (fence
  first, then recovery; a named recovery workflow); nothing to undo.

Evaluation is off the notification's path: changes (the alarm book's, the
map's from the bus) mark vertices dirty, and the engine re-evaluates the
scenarios around them (the vertices and their neighbours) in its own task,
then commits its actions in one unit of work and notifies after the commit.
Its own changes come back as dirty vertices, so chained rules reach a fixed
point (the loader refuses cycles). At start and on reload every scenario is
evaluated over the whole graph: what holds is done (idempotent), and a
deduced alarm no rule supports any more is cleared.
"""

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from vigil.domain.alarms import Alarm, AlarmChange, AlarmKind, alarm_id
from vigil.domain.errors import DomainError, NotFound
from vigil.domain.events import ResourceEvent
from vigil.domain.faults import FaultId, Severity
from vigil.domain.rules import (
    Action,
    ActionType,
    Clause,
    Entity,
    RuleResource,
    RuleSet,
    Scenario,
    Template,
    to_dnf,
)
from vigil.domain.states import AdminState, DataPlaneStatus, InstanceState
from vigil.inspector.ports import Alarms, Controller, Publisher
from vigil.inspector.rule_graph import ALARM, AlarmSource, RuleGraph, RuleMap, Vertex

log = logging.getLogger(__name__)

RULE_REASON = "rule: "
Binding = frozenset[tuple[str, Vertex]]


class RuleActions(Protocol):
    """What rules hand on: fencing a host, and the named recovery workflows of ``execute_mistral``."""

    def fence(self, host: str, why: str) -> None: ...

    def run_workflow(self, name: str, inputs: Mapping[str, str], target: Vertex | None) -> None: ...


@dataclass(frozen=True, slots=True)
class ActionKey:
    """One action of a scenario on what one binding bound: its target and source, and its inputs once their
    ``get_attr(template_id, property)`` were read off the bound vertices (so a workflow runs once per host)."""

    scenario: str
    index: int
    target: Vertex | None
    source: Vertex | None
    inputs: tuple[tuple[str, str], ...] = ()


GET_ATTR = re.compile(r"\s*get_attr\(\s*([\w.-]+)\s*,\s*([\w.-]+)\s*\)\s*")


@dataclass(slots=True)
class _Done:
    template: Template
    scenario: Scenario
    supports: set[Binding] = field(default_factory=set)
    undo: dict[str, Any] = field(default_factory=dict)  # what undoing restores


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RuleEngine:
    def __init__(
        self,
        rules: RuleSet,
        controller: Controller,
        alarms: Alarms,
        book: AlarmSource,
        publisher: Publisher,
        actions: RuleActions,
        *,
        alarm_types: frozenset[str] = frozenset(),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._controller = controller
        self._alarms = alarms
        self._book = book
        self._publisher = publisher
        self._actions = actions
        self._types = alarm_types
        self._clock = clock
        self._causal: set[tuple[Vertex, Vertex]] = set()
        self._done: dict[ActionKey, _Done] = {}
        self._dirty: set[Vertex] = set()
        self._changed: list[Alarm] = []  # alarms changed since the last round (their vertices are dirty)
        self._full = True
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.evaluations = 0
        self.load(rules)

    # -- rules -------------------------------------------------------------------

    def load(self, rules: RuleSet) -> None:
        """Take these rules (a reload): everything is evaluated again over the whole graph."""
        self.rules = rules
        self._scenarios = [(t, s, to_dnf(s.condition)) for t, s in rules.scenarios()]
        self._full = True
        self._idle.clear()
        self._wake.set()

    def describe(self) -> list[dict[str, Any]]:
        """The loaded templates, for ``GET /v1/rules``."""
        active: dict[str, int] = {}
        for key in self._done:
            active[key.scenario] = active.get(key.scenario, 0) + 1
        return [
            {
                "name": t.name,
                "description": t.description,
                "version": t.version,
                "kind": str(t.kind),
                "file": t.source,
                "entities": sorted(t.entities),
                "scenarios": [
                    {
                        "id": s.id,
                        "condition": s.condition_text,
                        "actions": [str(a.type) for a in s.actions],
                        "active_actions": active.get(s.id, 0),
                    }
                    for s in t.scenarios
                ],
            }
            for t in self.rules.templates
        ]

    # -- triggers ------------------------------------------------------------------

    def touch(self, vertices: Iterable[Vertex]) -> None:
        self._dirty.update(vertices)
        if self._dirty:
            self._idle.clear()
            self._wake.set()

    def alarms_changed(self, changes: Iterable[AlarmChange]) -> None:
        """Called on the notification's path (the publisher's): only remembers, the engine's task does the rest."""
        if not self._scenarios:
            return
        self._changed.extend(c.alarm for c in changes)
        self._idle.clear()
        self._wake.set()

    def resource_changed(self, event: ResourceEvent) -> None:
        if not self._scenarios:
            return
        kind = {"host": RuleResource.HOST, "instance": RuleResource.INSTANCE, "port": RuleResource.PORT}.get(
            str(event.resource_type)
        )
        if kind is not None:
            self.touch([(kind, event.resource_id)])

    async def follow(self, events: "asyncio.Queue[ResourceEvent]") -> None:
        while True:
            self.resource_changed(await events.get())

    async def run(self) -> None:
        """Evaluate whenever something is dirty, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.evaluate()
            except Exception:
                log.exception("rule evaluation failed")
            if not self._dirty and not self._full and not self._changed:
                self._idle.set()

    async def settled(self) -> None:
        """Wait until nothing is left to evaluate (tests)."""
        await self._idle.wait()

    # -- evaluation -------------------------------------------------------------------

    def _graph(self) -> RuleGraph:
        return RuleGraph(self._map(), self._book, self._causal, self._types)

    def _map(self) -> RuleMap:
        rmap: RuleMap = self._controller.map  # type: ignore[assignment]
        return rmap

    async def evaluate(self) -> None:
        """One round over what is dirty (or everything), its actions committed together."""
        graph = self._graph()
        changed, self._changed = self._changed, []
        full, dirty = self._full, self._dirty | graph.alarm_vertices(changed)
        self._full, self._dirty = False, set()
        if not full and not dirty:
            return
        self.evaluations += 1
        region: set[Vertex] | None = None
        if not full:
            region = set(dirty)
            for vertex in dirty:
                region |= graph.neighbours(vertex)
        found: dict[ActionKey, tuple[Template, Scenario, set[Binding]]] = {}
        for template, scenario, dnf in self._scenarios:
            for clause in dnf:
                for binding in self._bindings(graph, template, clause, region):
                    for index, action in enumerate(scenario.actions):
                        key = self._key(graph, scenario, index, action, binding)
                        found.setdefault(key, (template, scenario, set()))[2].add(binding)
        now = self._clock()
        uow = self._controller.begin("rule templates evaluated", now=now)
        changes: list[AlarmChange] = []
        current = {(t.name, s.id) for t, s, _ in self._scenarios}
        for held in self._done.values():
            stale = (held.template.name, held.scenario.id) not in current
            if stale or region is None:
                held.supports.clear()
            else:
                held.supports = {b for b in held.supports if not any(v in region for _, v in b)}
        for key, (template, scenario, bindings) in found.items():
            existing = self._done.get(key)
            if existing is None:
                existing = self._done[key] = _Done(template, scenario)
                self._do(key, existing, graph, uow, changes, now)
            existing.supports |= bindings
        for key, done in reversed(list(self._done.items())):  # the last done is undone first
            if not done.supports:
                self._undo(key, done, uow, changes, now)
                del self._done[key]
        if full:
            changes.extend(self._orphans(now))
        for change in changes:
            uow.record(change.alarm)
        deliveries = self._publisher.publish(changes, None, uow, start=False)
        await self._controller.commit(uow)
        self._publisher.deliver(deliveries, None)
        if changes:
            self.alarms_changed(changes)

    def _key(self, graph: RuleGraph, scenario: Scenario, index: int, action: Action, binding: Binding) -> ActionKey:
        bound = dict(binding)
        target, source = action.target, action.source
        inputs = tuple((name, _resolved(graph, bound, value)) for name, value in action.inputs.items())
        return ActionKey(
            scenario.id, index, bound.get(target) if target else None, bound.get(source) if source else None, inputs
        )

    def _bindings(
        self, graph: RuleGraph, template: Template, clause: Clause, region: set[Vertex] | None
    ) -> Iterator[Binding]:
        """Every binding of the clause's positive template ids that satisfies it (touching ``region``, if given)."""
        positives = [lit.ref for lit in clause if lit.positive]
        negatives = [lit.ref for lit in clause if not lit.positive]
        rels = [template.relationships[r] for r in positives if r in template.relationships]
        ids = list(dict.fromkeys(e for r in positives for e in template.entity_ids(r)))
        if not ids:
            return
        seen: set[Binding] = set()
        starts: list[tuple[str, Vertex]] = []
        if region is None:
            first = min(ids, key=lambda tid: 0 if template.entities[tid].is_alarm else 1)
            starts = [(first, v) for v in graph.vertices(_kind(template.entities[first]))]
        else:
            starts = [(tid, v) for tid in ids for v in region]
        for tid, vertex in starts:
            if not graph.matches(template.entities[tid], vertex):
                continue
            for binding in self._extend(graph, template, ids, rels, {tid: vertex}):
                frozen = frozenset(binding.items())
                if frozen in seen:
                    continue
                seen.add(frozen)
                if all(not self._negated_holds(graph, template, ref, binding) for ref in negatives):
                    yield frozen

    def _extend(
        self,
        graph: RuleGraph,
        template: Template,
        ids: list[str],
        rels: list[Any],
        bound: dict[str, Vertex],
    ) -> Iterator[dict[str, Vertex]]:
        for rel in rels:  # every relationship with both ends bound must be an edge
            if (
                rel.source in bound
                and rel.target in bound
                and bound[rel.target] not in graph.targets(bound[rel.source], rel.relationship_type)
            ):
                return
        if len(bound) == len(ids):
            yield dict(bound)
            return
        for rel in rels:  # grow along a relationship from a bound end
            if (rel.source in bound) == (rel.target in bound):
                continue
            if rel.source in bound:
                tid, candidates = rel.target, graph.targets(bound[rel.source], rel.relationship_type)
            else:
                tid, candidates = rel.source, graph.sources(bound[rel.target], rel.relationship_type)
            for vertex in candidates:
                if graph.matches(template.entities[tid], vertex):
                    yield from self._extend(graph, template, ids, rels, {**bound, tid: vertex})
            return
        tid = next(t for t in ids if t not in bound)  # not connected to what is bound: any vertex that matches
        for vertex in graph.vertices(_kind(template.entities[tid])):
            if graph.matches(template.entities[tid], vertex):
                yield from self._extend(graph, template, ids, rels, {**bound, tid: vertex})

    def _negated_holds(self, graph: RuleGraph, template: Template, ref: str, bound: dict[str, Vertex]) -> bool:
        """Whether the relationship (or entity) under a ``not`` holds for the binding."""
        rel = template.relationships.get(ref)
        if rel is None:
            entity = template.entities[ref]
            if ref in bound:
                return graph.matches(entity, bound[ref])
            return any(graph.matches(entity, v) for v in graph.vertices(_kind(entity)))
        source, target = bound.get(rel.source), bound.get(rel.target)
        if source is not None:
            ends = graph.targets(source, rel.relationship_type)
            return any(
                (v == target) if target is not None else graph.matches(template.entities[rel.target], v) for v in ends
            )
        if target is not None:
            return any(
                graph.matches(template.entities[rel.source], v) for v in graph.sources(target, rel.relationship_type)
            )
        return any(
            graph.matches(template.entities[rel.target], t)
            for s in graph.vertices(_kind(template.entities[rel.source]))
            if graph.matches(template.entities[rel.source], s)
            for t in graph.targets(s, rel.relationship_type)
        )

    # -- actions --------------------------------------------------------------------------

    def _do(
        self, key: ActionKey, done: _Done, graph: RuleGraph, uow: Any, changes: list[AlarmChange], now: datetime
    ) -> None:
        action = done.scenario.actions[key.index]
        target = key.target
        why = f"{done.template.name} ({done.scenario.id})"
        try:
            match action.type:
                case ActionType.RAISE_ALARM if target is not None:
                    raised = self._raise(key, done, graph, now)
                    if raised is not None:
                        changes.append(raised)
                case ActionType.SET_STATE | ActionType.SET_INSTANCE_STATE if target is not None:
                    default = "ERROR" if action.type is ActionType.SET_INSTANCE_STATE else ""
                    self._set_state(uow, target, str(action.properties.get("state", default)).upper(), done.undo)
                case ActionType.MARK_DOWN if target is not None and target[0] == RuleResource.HOST:
                    self._mark_down(uow, target[1], why, done.undo)
                case ActionType.ADD_CAUSAL_RELATIONSHIP if target is not None and key.source is not None:
                    self._causal.add((key.source, target))
                case ActionType.FENCE if target is not None and target[0] == RuleResource.HOST:
                    self._actions.fence(target[1], why)
                case ActionType.EXECUTE_MISTRAL:
                    workflow = str(action.properties.get("workflow", ""))
                    self._actions.run_workflow(workflow, dict(key.inputs), target)
                case _:
                    log.warning("rule %s: %s cannot act on %s", why, action.type, target)
        except (DomainError, ValueError, KeyError) as exc:  # e.g. a state Vigil's resources do not have: this
            # action only; the round's other actions still apply
            log.warning("rule %s: %s on %s refused: %s", why, action.type, target, exc)

    def _undo(self, key: ActionKey, done: _Done, uow: Any, changes: list[AlarmChange], now: datetime) -> None:
        action = done.scenario.actions[key.index]
        target = key.target
        try:
            match action.type:
                case ActionType.RAISE_ALARM:
                    alarm = done.undo.get("alarm")
                    if isinstance(alarm, Alarm) and alarm.active:
                        changes.append(self._alarms.clear(alarm, now))
                case ActionType.SET_STATE | ActionType.SET_INSTANCE_STATE | ActionType.MARK_DOWN if target:
                    self._restore(uow, target, done.undo)
                case ActionType.ADD_CAUSAL_RELATIONSHIP if target is not None and key.source is not None:
                    self._causal.discard((key.source, target))
                case _:
                    pass  # fence and workflows are not undone
        except (DomainError, ValueError, KeyError) as exc:
            log.warning("undoing %s of %s on %s refused: %s", action.type, done.scenario.id, target, exc)

    def _raise(self, key: ActionKey, done: _Done, graph: RuleGraph, now: datetime) -> AlarmChange | None:
        """The deduced alarm raised; None when it is open already (evaluated again after a restart or reload)."""
        action = done.scenario.actions[key.index]
        assert key.target is not None
        kind, ident = key.target
        props = graph.properties(key.target) or {}
        project = props.get("project") if kind in (RuleResource.INSTANCE, RuleResource.SERVER_GROUP) else None
        name = str(action.properties.get("alarm_name", "deduced"))
        severity = _severity(str(action.properties.get("severity", "MAJOR")))
        cause = f"rule/{key.scenario}/{key.index}/{kind}/{ident}"
        with contextlib.suppress(NotFound):
            existing = self._book.get(alarm_id(cause, AlarmKind.DEDUCED, ident, project))
            if existing.active:
                done.undo["alarm"] = existing
                return None
        change = self._alarms.raise_alarm(
            cause=cause,
            kind=AlarmKind.DEDUCED,
            project=project,
            resource_type=kind,
            resource_id=ident,
            severity=severity,
            fault=FaultId(f"rule:{key.scenario}"),
            reason=f"{name} (rule {done.template.name})",
            now=now,
            resource_ids=[ident] if kind == RuleResource.INSTANCE else [],
            details={"alarm_name": name, "vertex_kind": kind, "template": done.template.name, "scenario": key.scenario},
        )
        done.undo["alarm"] = change.alarm
        return change

    def _set_state(self, uow: Any, target: Vertex, state: str, undo: dict[str, Any]) -> None:
        kind, ident = target
        rmap = uow.map
        if kind == RuleResource.INSTANCE:
            inst = rmap.instance(ident)
            wanted = InstanceState(state or "ERROR")
            undo.setdefault("fields", {"state": inst.state})
            if inst.state is not wanted:
                uow.update(inst, state=wanted)
        elif kind == RuleResource.PORT:
            port = rmap.port(ident)
            undo.setdefault("fields", {"data_plane_status": port.data_plane_status})
            uow.update(port, data_plane_status=DataPlaneStatus(state or "DOWN"))
        elif kind == RuleResource.HOST:
            host = rmap.host(ident)
            undo.setdefault("fields", {"forced_down": host.forced_down, "reachable": host.reachable})
            if state == "UNKNOWN":
                uow.update(host, reachable=False)
            else:
                uow.update(host, forced_down=True)
        else:
            raise NotFound(str(kind), ident)

    def _mark_down(self, uow: Any, name: str, why: str, undo: dict[str, Any]) -> None:
        host = uow.map.host(name)
        undo.setdefault(
            "fields",
            {"forced_down": host.forced_down, "admin_state": host.admin_state, "disabled_reason": host.disabled_reason},
        )
        if not host.forced_down:
            fields: dict[str, Any] = {"forced_down": True}
            if host.admin_state is AdminState.ENABLED:
                fields.update(admin_state=AdminState.DISABLED, disabled_reason=f"{RULE_REASON}{why}")
            uow.update(host, **fields)

    def _restore(self, uow: Any, target: Vertex, undo: dict[str, Any]) -> None:
        fields: dict[str, Any] = dict(undo.get("fields") or {})
        if not fields:
            return
        kind, ident = target
        rmap = uow.map
        resource = {
            RuleResource.INSTANCE: rmap.instance,
            RuleResource.PORT: rmap.port,
            RuleResource.HOST: rmap.host,
        }[RuleResource(kind)](ident)
        if kind == RuleResource.HOST and "admin_state" in fields:
            reason = resource.disabled_reason or ""
            if not reason.startswith(RULE_REASON):  # someone else disabled it since: leave it disabled
                fields.pop("admin_state")
                fields.pop("disabled_reason")
        changed = {k: v for k, v in fields.items() if getattr(resource, k) != v}
        if changed:
            uow.update(resource, **changed)

    def _orphans(self, now: datetime) -> list[AlarmChange]:
        """Deduced alarms that no rule supports (the rules changed, or a restart came between)."""
        raised = {id(d.undo.get("alarm")) for d in self._done.values()}
        return [self._alarms.clear(a, now) for a in self._book.open(AlarmKind.DEDUCED) if id(a) not in raised]


def _resolved(graph: RuleGraph, bound: Mapping[str, Vertex], value: str) -> str:
    """An input's value, its ``get_attr(template_id, property)`` read off the vertex the binding bound (Vitrage's
    function; empty if the binding or the vertex has no such thing)."""
    found = GET_ATTR.fullmatch(value)
    if found is None:
        return value
    vertex = bound.get(found.group(1))
    props = graph.properties(vertex) if vertex is not None else None
    return "" if props is None else props.get(found.group(2), "")


def _kind(entity: Entity) -> str | None:
    if entity.is_alarm:
        return ALARM
    return entity.resource.value if entity.resource is not None else None


def _severity(text: str) -> Severity:
    try:
        return Severity(text.upper())
    except ValueError:
        return {"HIGH": Severity.CRITICAL, "DISASTER": Severity.CRITICAL, "AVERAGE": Severity.MAJOR}.get(
            text.upper(), Severity.MAJOR
        )
