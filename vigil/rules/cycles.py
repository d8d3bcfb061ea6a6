"""Cycles among deduced alarms, across every template loaded together.

A ``raise_alarm`` action raises a deduced alarm (type ``vitrage``, named
``alarm_name``, with its ``severity``). When that alarm can satisfy an alarm
entity of another scenario's condition, and that scenario raises an alarm
which, directly or through others, satisfies the first scenario's
condition, the rules feed each other: raising one keeps the other raised
(or, through a ``not``, flips it on and off) for ever. That is what a cycle
means here, and the loader refuses it.

The graph's vertices are the ``raise_alarm`` actions; an edge goes from one
to another when the second's scenario condition names (positively or under
``not``) an entity that the first's alarm may match: an entity that is not a
resource, whose type is absent or ``vitrage``, whose ``name`` (or
``name.regex``) and ``severity`` (when written) agree with the alarm, and
that asks for no other property a deduced alarm lacks, and, when the
condition puts it ``[on]`` resources, on one of the kind the alarm is raised
on. The match cannot follow resources themselves (which host, which
instance): it may see a cycle where they never line up, never miss one.
Strongly connected components (Tarjan) with more than one vertex, or a
vertex with an edge to itself, are the cycles.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vigil.domain.rules import (
    DEDUCED_ALARM_TYPE,
    Action,
    ActionType,
    Category,
    Entity,
    RuleResource,
    Scenario,
    Template,
    refs,
)
from vigil.rules.problems import Problem


@dataclass(frozen=True, slots=True)
class _Raise:
    template: Template
    scenario: Scenario
    action: Action

    @property
    def alarm(self) -> str:
        return self.action.properties.get("alarm_name", "")

    @property
    def severity(self) -> str:
        return self.action.properties.get("severity", "")

    @property
    def raised_on(self) -> RuleResource | None:
        target = self.template.entities.get(self.action.target or "")
        return target.resource if target is not None else None

    def alarm_entities(self) -> list[tuple[Entity, set[RuleResource | None]]]:
        """The alarm-capable entities this scenario's condition names, each with the resources it is ``[on]``."""
        template = self.template
        names = refs(self.scenario.condition)
        found: dict[str, set[RuleResource | None]] = {}
        for ref in names:
            for tid in template.entity_ids(ref):
                if tid in template.entities and template.entities[tid].category is not Category.RESOURCE:
                    found.setdefault(tid, set())
        for ref in names:
            rel = template.relationships.get(ref)
            if rel is not None and rel.relationship_type == "on" and rel.source in found:
                target = template.entities.get(rel.target)
                found[rel.source].add(target.resource if target is not None else None)
        return [(template.entities[tid], on) for tid, on in found.items()]

    def __str__(self) -> str:
        return f"'{self.alarm}' (template '{self.template.name}', {self.action.origin})"


def may_match(entity: Entity, alarm_name: str, severity: str) -> bool:
    """Whether a deduced alarm so named, of this severity, can be the vertex ``entity`` matches."""
    if entity.category is Category.RESOURCE or entity.type not in (None, DEDUCED_ALARM_TYPE):
        return False
    for key, value in entity.properties.items():
        if key == "name":
            if value != alarm_name:
                return False
        elif key == "name.regex":
            try:
                if re.match(value, alarm_name) is None:
                    return False
            except re.error:
                return False
        elif key == "severity":
            if value.lower() != severity.lower():
                return False
        else:
            return False
    return True


def deduced_alarm_cycles(templates: Sequence[Template]) -> list[Problem]:
    """A problem at every ``raise_alarm`` on a cycle, naming the whole cycle."""
    raises = [
        _Raise(t, s, a) for t in templates for s in t.scenarios for a in s.actions if a.type is ActionType.RAISE_ALARM
    ]
    wanted = [r.alarm_entities() for r in raises]
    edges: list[list[int]] = []
    for producer in raises:
        edges.append(
            [
                i
                for i, consumer in enumerate(raises)
                if any(
                    may_match(entity, producer.alarm, producer.severity) and _same_kind(producer.raised_on, on)
                    for entity, on in wanted[i]
                )
            ]
        )
    problems: list[Problem] = []
    for component in _components(edges):
        cycle = _cycle(component, edges)
        if cycle is None:
            continue
        chain = " → ".join(str(raises[i]) for i in [*cycle, cycle[0]])
        for position, i in enumerate(cycle):
            needs = raises[cycle[position - 1]]
            here = raises[i]
            problems.append(
                Problem(
                    here.action.origin.file,
                    here.action.origin.line,
                    f"deduced alarms form a cycle: raise_alarm '{here.alarm}' needs '{needs.alarm}' "
                    f"raised at {needs.action.origin}; the cycle: {chain}",
                )
            )
    return problems


def _same_kind(raised_on: RuleResource | None, on: set[RuleResource | None]) -> bool:
    """Whether an alarm raised on ``raised_on`` can be ``[on]`` the resources a condition wants (unknown: yes)."""
    return not on or raised_on is None or None in on or raised_on in on


def _components(edges: list[list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    result: list[list[int]] = []
    counter = 0
    for root in range(len(edges)):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                nxt = edges[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def _cycle(component: list[int], edges: list[list[int]]) -> list[int] | None:
    """A cycle through the component's first vertex, or None when the component has none."""
    start = component[0]
    if len(component) == 1:
        return [start] if start in edges[start] else None
    members = set(component)
    parents: dict[int, int] = {}
    frontier = [start]
    while frontier:
        following: list[int] = []
        for node in frontier:
            for nxt in edges[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if nxt not in parents:
                    parents[nxt] = node
                    following.append(nxt)
        frontier = following
    return None  # pragma: no cover - a component of several vertices always has a cycle through each
