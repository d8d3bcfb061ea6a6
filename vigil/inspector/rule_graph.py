"""The entity graph rule templates are matched against: Vigil's resources and alarms, as Vitrage sees a cloud.

Vertices are ``(kind, id)``: a resource (``host``, ``instance``, ``port``,
``switch``, ``server_group``, ``zone``) or an ``alarm``. Edges are read off
the resource map as they are asked for, never copied:

* ``host [contains] instance``, ``zone [contains] host``,
  ``server_group [contains] instance``;
* ``switch [attached] host``, ``port [attached] instance``;
* ``alarm [on] resource``;
* ``alarm [causes] alarm``: the causal edges rules added
  (``add_causal_relationship``), kept by the rule engine.

The alarms are Vigil's open alarms (the alarm book): a host's or switch's
failure alarm is typed by the monitor that reported it where that is an
alarm type templates know (``zabbix``, ``prometheus`` for Alertmanager's, ...;
else ``doctor``, Vitrage's name for Doctor's events). Its ``name``,
``rawtext`` and ``severity`` are the monitor's own where it gave them, as
Vitrage's datasources give them (a Zabbix trigger's name, its unexpanded
name and its priority, ``HIGH``; a Prometheus alertname and ``severity``
label); else the event type that opened it (``compute.host.down``), the
report's cause and severity. ``event_type`` is always Vigil's event type; an ``instance.down``
alarm is one vertex per instance it names; a rule's deduced alarm is typed
``vitrage``, named by its ``alarm_name``. Property values compare as text,
without regard to case; ``<key>.regex`` matches a regular expression.
"""

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from vigil.domain.alarms import Alarm, AlarmKind
from vigil.domain.errors import NotFound
from vigil.domain.model import Host, Instance, Port, ServerGroup
from vigil.domain.rules import DEDUCED_ALARM_TYPE, Entity, RuleResource

Vertex = tuple[str, str]
ALARM = "alarm"
VIGIL_ALARM_TYPE = "vigil"
DOCTOR_ALARM_TYPE = "doctor"


class RuleMap(Protocol):
    def host(self, name: str) -> Host: ...
    def hosts(self) -> list[Host]: ...
    def instance(self, ident: str) -> Instance: ...
    def instances(self, project: str | None = None) -> list[Instance]: ...
    def instances_on(self, host: str) -> list[Instance]: ...
    def port(self, ident: str) -> Port: ...
    def ports(self, project: str | None = None) -> list[Port]: ...
    def ports_of(self, instance: str) -> list[Port]: ...
    def group(self, ident: str) -> ServerGroup: ...
    def groups(self, project: str | None = None) -> list[ServerGroup]: ...
    def members(self, group: str) -> list[Instance]: ...
    def hosts_behind(self, switch: str) -> list[Host]: ...


class AlarmSource(Protocol):
    def open(self, kind: AlarmKind | None = None) -> list[Alarm]: ...

    def get(self, ident: str) -> Alarm: ...


# Vitrage's datasource type of a monitor Vigil names otherwise: Alertmanager's webhooks come from Prometheus.
_VITRAGE_TYPE: Mapping[str, str] = {"alertmanager": "prometheus"}


def _alarm_type(monitor: str, known: frozenset[str]) -> str:
    """The alarm type templates name a monitor's alarms by (else ``doctor``, Vitrage's type of Doctor's events)."""
    kind = _VITRAGE_TYPE.get(monitor, monitor)
    return kind if kind in known else DOCTOR_ALARM_TYPE


_ON: Mapping[AlarmKind, str] = {
    AlarmKind.HOST_DOWN: RuleResource.HOST,
    AlarmKind.HOST_DEGRADED: RuleResource.HOST,
    AlarmKind.HOST_FENCE_FAILED: RuleResource.HOST,
    AlarmKind.HOST_RECOVERY_FAILED: RuleResource.HOST,
    AlarmKind.SWITCH_DOWN: RuleResource.SWITCH,
    AlarmKind.GROUP_DEGRADED: RuleResource.SERVER_GROUP,
}


class RuleGraph:
    """A view of the map and the open alarms, with the rules' causal edges."""

    def __init__(
        self, rmap: RuleMap, alarms: AlarmSource, causal: set[tuple[Vertex, Vertex]], alarm_types: frozenset[str]
    ) -> None:
        self._map = rmap
        self._causal = causal
        self._types = alarm_types
        self._alarms: dict[str, tuple[dict[str, str], Vertex]] = {}  # alarm vertex id -> (properties, its resource)
        for alarm in alarms.open():
            for ident, props, on in self._alarm_vertices(alarm):
                self._alarms[ident] = (props, on)

    # -- vertices ------------------------------------------------------------

    def _alarm_vertices(self, alarm: Alarm) -> Iterator[tuple[str, dict[str, str], Vertex]]:
        severity = str(alarm.details.get("severity") or alarm.severity)
        if alarm.kind is AlarmKind.DEDUCED:
            props = {"type": DEDUCED_ALARM_TYPE, "name": str(alarm.details.get("alarm_name", "")), "severity": severity}
            yield alarm.id, props, (str(alarm.details.get("vertex_kind")), alarm.resource_id)
            return
        if alarm.kind is AlarmKind.INSTANCE_DOWN:
            for inst in alarm.resource_ids:
                props = {"type": VIGIL_ALARM_TYPE, "name": alarm.kind.value, "severity": severity}
                yield f"{alarm.id}/{inst}", props, (RuleResource.INSTANCE, inst)
            return
        kind = _ON.get(alarm.kind)
        if kind is None:
            return
        if alarm.kind is AlarmKind.HOST_DEGRADED:  # each failure still down, as its monitor reported it
            for key, reported in dict(alarm.details.get("events") or {}).items():
                yield f"{alarm.id}/{key}", self._reported(dict(reported), severity), (kind, alarm.resource_id)
        if "event_type" in alarm.details:
            props = self._reported(dict(alarm.details), severity)
        else:
            props = {"type": VIGIL_ALARM_TYPE, "name": alarm.kind.value, "severity": severity}
        yield alarm.id, props, (kind, alarm.resource_id)

    def _reported(self, reported: dict[str, Any], severity: str) -> dict[str, str]:
        """A raw event's alarm properties: typed by its monitor when templates know it (else Doctor's), named and
        graded as the monitor named and graded it where it did (else by Vigil's event type and severity)."""
        monitor = str(reported.get("monitor") or "")
        event_type = str(reported.get("event_type", ""))
        props = {
            "type": _alarm_type(monitor, self._types),
            "name": event_type,
            "severity": str(reported.get("severity") or severity),
            "monitor": monitor,
            "event_type": event_type,
        }
        if reported.get("cause"):
            props["rawtext"] = str(reported["cause"])
        props.update({k: str(v) for k, v in dict(reported.get("alarm") or {}).items() if v})
        return props

    def alarm_on(self, alarm: str) -> Vertex | None:
        found = self._alarms.get(alarm)
        return None if found is None else found[1]

    def properties(self, vertex: Vertex) -> dict[str, str] | None:
        """A vertex's properties, or None if it is gone."""
        kind, ident = vertex
        try:
            if kind == ALARM:
                found = self._alarms.get(ident)
                return None if found is None else found[0]
            if kind == RuleResource.HOST:
                host = self._map.host(ident)
                return {"name": host.name, "id": host.name, "state": host.status.value, "zone": host.zone}
            if kind == RuleResource.INSTANCE:
                inst = self._map.instance(ident)
                return {"name": inst.name, "id": inst.id, "state": inst.state.value, "project": inst.project}
            if kind == RuleResource.PORT:
                port = self._map.port(ident)
                return {"name": port.id, "id": port.id, "state": port.data_plane_status.value}
            if kind == RuleResource.SERVER_GROUP:
                group = self._map.group(ident)
                return {"name": group.name, "id": group.id, "project": group.project}
            if kind in (RuleResource.SWITCH, RuleResource.ZONE):
                return {"name": ident, "id": ident}
        except NotFound:
            return None
        return None

    def vertices(self, kind: str | None) -> Iterator[Vertex]:
        """Every vertex of ``kind`` (None: every resource and alarm)."""
        if kind in (None, ALARM):
            yield from ((ALARM, a) for a in self._alarms)
        if kind in (None, RuleResource.HOST):
            yield from ((RuleResource.HOST, h.name) for h in self._map.hosts())
        if kind in (None, RuleResource.INSTANCE):
            yield from ((RuleResource.INSTANCE, i.id) for i in self._map.instances())
        if kind in (None, RuleResource.PORT):
            yield from ((RuleResource.PORT, p.id) for p in self._map.ports())
        if kind in (None, RuleResource.SERVER_GROUP):
            yield from ((RuleResource.SERVER_GROUP, g.id) for g in self._map.groups())
        if kind in (None, RuleResource.SWITCH):
            yield from ((RuleResource.SWITCH, s) for s in sorted({h.switch for h in self._map.hosts() if h.switch}))
        if kind in (None, RuleResource.ZONE):
            yield from ((RuleResource.ZONE, z) for z in sorted({h.zone for h in self._map.hosts()}))

    def matches(self, entity: Entity, vertex: Vertex) -> bool:
        kind = vertex[0]
        if entity.is_alarm and kind != ALARM:
            return False
        if entity.resource is not None and kind != entity.resource:
            return False
        if entity.category is not None and not entity.is_alarm and kind == ALARM:
            return False
        props = self.properties(vertex)
        if props is None:
            return False
        if entity.is_alarm and entity.type is not None and props.get("type", "").lower() != entity.type.lower():
            return False
        for key, wanted in entity.properties.items():
            if key.endswith(".regex"):
                if re.fullmatch(wanted, props.get(key[: -len(".regex")], ""), re.IGNORECASE) is None:
                    return False
            elif key in ("category", "type", "template_id"):
                continue
            elif props.get(key, "").lower() != str(wanted).lower():
                return False
        return True

    # -- edges -----------------------------------------------------------------

    def targets(self, source: Vertex, relationship: str) -> list[Vertex]:
        """The vertices ``source [relationship] *``."""
        kind, ident = source
        try:
            if relationship == "on" and kind == ALARM:
                on = self.alarm_on(ident)
                return [] if on is None else [on]
            if relationship == "causes" and kind == ALARM:
                return [t for s, t in self._causal if s == source]
            if relationship == "contains":
                if kind == RuleResource.HOST:
                    return [(RuleResource.INSTANCE, i.id) for i in self._map.instances_on(ident) if i.host == ident]
                if kind == RuleResource.SERVER_GROUP:
                    return [(RuleResource.INSTANCE, i.id) for i in self._map.members(ident)]
                if kind == RuleResource.ZONE:
                    return [(RuleResource.HOST, h.name) for h in self._map.hosts() if h.zone == ident]
            if relationship == "attached":
                if kind == RuleResource.SWITCH:
                    return [(RuleResource.HOST, h.name) for h in self._map.hosts_behind(ident)]
                if kind == RuleResource.PORT:
                    return [(RuleResource.INSTANCE, self._map.port(ident).instance)]
        except NotFound:
            return []
        return []

    def sources(self, target: Vertex, relationship: str) -> list[Vertex]:
        """The vertices ``* [relationship] target``."""
        kind, ident = target
        try:
            if relationship == "on":
                return [(ALARM, a) for a, (_, on) in self._alarms.items() if on == target]
            if relationship == "causes" and kind == ALARM:
                return [s for s, t in self._causal if t == target]
            if relationship == "contains":
                if kind == RuleResource.INSTANCE:
                    inst = self._map.instance(ident)
                    found: list[Vertex] = [(RuleResource.HOST, inst.host)] if inst.host else []
                    if inst.group is not None:
                        found.append((RuleResource.SERVER_GROUP, inst.group))
                    return found
                if kind == RuleResource.HOST:
                    return [(RuleResource.ZONE, self._map.host(ident).zone)]
            if relationship == "attached":
                if kind == RuleResource.HOST:
                    switch = self._map.host(ident).switch
                    return [(RuleResource.SWITCH, switch)] if switch else []
                if kind == RuleResource.INSTANCE:
                    return [(RuleResource.PORT, p.id) for p in self._map.ports_of(ident)]
        except NotFound:
            return []
        return []

    def neighbours(self, vertex: Vertex) -> set[Vertex]:
        """Every vertex one edge away, either way."""
        found: set[Vertex] = set()
        for relationship in ("on", "causes", "contains", "attached"):
            found.update(self.targets(vertex, relationship))
            found.update(self.sources(vertex, relationship))
        return found

    def alarm_vertices(self, alarms: Iterable[Alarm]) -> set[Vertex]:
        """The vertices of these alarms and of the resources they are on (what a change of them touches)."""
        touched: set[Vertex] = set()
        for alarm in alarms:
            for ident, _, on in self._alarm_vertices(alarm):
                touched.update({(ALARM, ident), on})
        return touched
