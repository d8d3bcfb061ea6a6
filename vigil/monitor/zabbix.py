"""Zabbix's trigger messages mapped to southbound reports; pure.

Three shapes carry the same fields, those of the message Enea's media type
sends (OPNFV Doctor with Zabbix and Vitrage, seed 004)::

    host={HOST.NAME1} hostid={HOST.ID1} hostip={HOST.IP1} triggerid={TRIGGER.ID}
    description={TRIGGER.NAME} rawtext={TRIGGER.NAME.ORIG} expression={TRIGGER.EXPRESSION}
    value={TRIGGER.VALUE} priority={TRIGGER.NSEVERITY} lastchange={EVENT.DATE} {EVENT.TIME}

* that text, one ``key=value`` per line (as Vitrage's ``zabbix_vitrage.py``
  takes it) or all on one line (as the seed prints it: the keys are known, so a
  value may hold spaces, and an ``=`` not preceded by a space);
* a JSON object with those keys (Zabbix's webhook media type posting its
  parameters; numbers as strings or as numbers, other keys ignored, and an
  optional ``eventid``, ``{EVENT.ID}``);
* the oslo.messaging notification ``zabbix_vitrage.py`` publishes on the
  ``vitrage_notifications`` topic (``{"oslo.version": "2.0", "oslo.message":
  "<json>"}`` or the bare message): ``event_type`` ``zabbix.alarm.problem`` or
  ``zabbix.alarm.ok``, the fields in its ``payload``. A notification of another
  event type on the same queue is ignored.

``value`` 1 (PROBLEM) is a ``<family>.down`` report, 0 (OK) a ``<family>.up``;
the family comes from the first trigger rule whose pattern is found in
``rawtext`` (the trigger's name before macros expand) or ``description``; a
trigger no rule names is ignored. ``priority``, Zabbix's NSEVERITY 0-5 (not
classified, information, warning, average, high, disaster), maps to Vigil's
severity. The report also keeps the alarm as Vitrage's Zabbix datasource
names it, what rule templates match: ``description`` as its name, ``rawtext``
and the priority's name (``HIGH``) as its severity. ``lastchange`` (``2017.08.24 12:00:21``, Zabbix's ``{EVENT.DATE}
{EVENT.TIME}`` in the Zabbix server's time zone, or ISO 8601) is the report's
time, else its receipt. The ``monitor_event_id`` is ``eventid`` (else
``trigger-<triggerid>``) with ``:problem`` or ``:ok``, so an escalation that
sends the same message again is a duplicate, and a recovery stamped with its
problem's time (``{EVENT.DATE}`` of a recovery message is the problem's) is not.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from vigil.domain.faults import EventId, EventStatus, FaultEvent, Severity
from vigil.monitor.reports import MAX_CAUSE, MAX_ID, BadInput, Ignored, Mapped, bounded, clipped, event_type

MONITOR = "zabbix"
LASTCHANGE = "lastchange"
FIELDS = (
    "host", "hostid", "hostip", "triggerid", "description", "rawtext", "expression", "value", "priority", LASTCHANGE,
    "eventid",
)  # fmt: skip
EVENT_TYPE_PREFIX = "zabbix.alarm."
MAX_TEXT = 4096  # a field of the message: Zabbix's trigger names and expressions are far shorter
MAX_LASTCHANGE = 64

# NSEVERITY: 0 not classified, 1 information, 2 warning, 3 average, 4 high, 5 disaster.
DEFAULT_SEVERITIES: Mapping[int, Severity] = {
    0: Severity.INDETERMINATE,
    1: Severity.WARNING,
    2: Severity.WARNING,
    3: Severity.MINOR,
    4: Severity.MAJOR,
    5: Severity.CRITICAL,
}

NUMBERS = frozenset({"hostid", "triggerid", "value", "priority", "eventid"})  # a string or an integer in JSON
# Zabbix's NSEVERITY by name, as Vitrage's Zabbix datasource gives an alarm's severity (a template's HIGH).
PRIORITY_NAMES = ("NOT CLASSIFIED", "INFORMATION", "WARNING", "AVERAGE", "HIGH", "DISASTER")
SHORT = frozenset({"host", "hostid", "hostip", "triggerid", "eventid", "value", "priority"})  # at most MAX_ID
LASTCHANGE_PATTERN = (
    r"(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})"  # {EVENT.DATE} {EVENT.TIME}
    r"|\d{4}-\d{2}-\d{2}([T ][0-9:.]+([Zz]|[+-]\d{2}:?\d{2})?)?"  # ISO 8601
)

_ONE_LINE = re.compile(r"(?:^|\s)(" + "|".join(FIELDS) + r")=")
_LASTCHANGE = re.compile(LASTCHANGE_PATTERN)


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """One Zabbix trigger event: a problem (``problem``) or its recovery."""

    host: str
    triggerid: str
    problem: bool
    priority: int = 0
    description: str = ""
    rawtext: str = ""
    expression: str = ""
    hostid: str = ""
    hostip: str = ""
    lastchange: datetime | None = None
    eventid: str | None = None

    @property
    def name(self) -> str:
        return self.description or self.rawtext or f"trigger {self.triggerid}"

    @property
    def alarm(self) -> dict[str, str]:
        """The alarm as Vitrage's Zabbix datasource gives it: the trigger's name, its name before macros expanded,
        its priority's name (what templates match)."""
        found = {"name": self.description, "rawtext": self.rawtext, "severity": PRIORITY_NAMES[self.priority]}
        return {k: v[:MAX_CAUSE] for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class TriggerRule:
    """Triggers whose rawtext or description holds ``pattern`` mean ``family`` (optionally related to a fixed
    ``related_to``, else to the trigger)."""

    pattern: re.Pattern[str]
    family: str
    related_to: str | None = None

    def matches(self, trigger: TriggerEvent) -> bool:
        return bool(self.pattern.search(trigger.rawtext) or self.pattern.search(trigger.description))


@dataclass(frozen=True, slots=True)
class TriggerMapping:
    rules: Sequence[TriggerRule]
    hosts: Mapping[str, str] = field(default_factory=dict)
    severities: Mapping[int, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    timezone: tzinfo = UTC
    monitor: str = MONITOR


# -- parsing ------------------------------------------------------------------


def parse_text(text: str, timezone: tzinfo = UTC) -> TriggerEvent:
    """Enea's media type message, one ``key=value`` per line or all on one line."""
    text = text.strip()
    if not text:
        raise BadInput("the message is empty")
    fields: dict[str, str] = {}
    if "\n" in text:
        for line in text.splitlines():
            key, equals, value = line.partition("=")
            if not equals:
                if line.strip():
                    raise BadInput(f"line {line.strip()[:80]!r} is not key=value")
                continue
            _put(fields, key.strip().lower(), value.strip())
    else:
        found = list(_ONE_LINE.finditer(text))
        if not found or found[0].start() != 0:
            raise BadInput("expected host=... triggerid=... value=... (Enea's Zabbix media type message)")
        for match, following in zip(found, [*found[1:], None], strict=True):
            end = following.start() if following is not None else len(text)
            _put(fields, match.group(1), text[match.end() : end].strip())
    return _trigger(fields, timezone)


def parse_json(body: Any, timezone: tzinfo = UTC) -> TriggerEvent | Ignored:
    """A decoded JSON body: the webhook media type's object, or an oslo.messaging notification (see the module)."""
    if not isinstance(body, dict):
        raise BadInput(f"expected a JSON object, not {type(body).__name__}")
    _no_nul(body)
    if "oslo.message" in body:
        inner = body["oslo.message"]
        if not isinstance(inner, str):
            raise BadInput("oslo.message is not a string")
        try:
            body = json.loads(inner)
        except ValueError as exc:
            raise BadInput(f"oslo.message is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadInput("oslo.message is not a JSON object")
    if "event_type" in body:
        return _notification(body, timezone)
    return _trigger({k: _scalar(k, v) for k, v in body.items() if k in FIELDS}, timezone)


def parse_body(body: bytes, timezone: tzinfo = UTC) -> TriggerEvent | Ignored:
    """A queue message's body: JSON when it is a JSON object, else Enea's text."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadInput("the message is not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        try:
            decoded = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"the message is not valid JSON: {exc}") from None
        return parse_json(decoded, timezone)
    return parse_text(text, timezone)


def _notification(message: dict[str, Any], timezone: tzinfo) -> TriggerEvent | Ignored:
    kind = message.get("event_type")
    ident = str(message.get("message_id") or "")
    if not isinstance(kind, str) or not kind.startswith(EVENT_TYPE_PREFIX):
        return Ignored(str(kind), ident, "not a Zabbix alarm notification (event_type zabbix.alarm.*)")
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise BadInput(f"{kind}: payload is not a JSON object")
    fields = {k.lower().strip(): _scalar(k, v) for k, v in payload.items() if isinstance(k, str)}
    if "value" not in fields:  # the subject, {TRIGGER.STATUS}, made the event type
        status = kind.removeprefix(EVENT_TYPE_PREFIX)
        fields["value"] = {"problem": "1", "ok": "0"}.get(status, status)
    return _trigger({k: v for k, v in fields.items() if k in FIELDS}, timezone)


def _no_nul(value: Any) -> None:
    """No NUL character anywhere, the keys of parameters Vigil ignores included (nothing the store refuses)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise BadInput("the message holds a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)


def _put(fields: dict[str, str], key: str, value: str) -> None:
    if key in fields:
        raise BadInput(f"{key} is given twice")
    fields[key] = value


def _scalar(key: str, value: Any) -> str:
    """A JSON field as text: ids and numbers may be integers, the other fields are strings."""
    if key not in NUMBERS:
        if not isinstance(value, str):
            raise BadInput(f"{key} must be a string")
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadInput(f"{key} must be a string or an integer")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise BadInput(f"{key} does not fit in a signed 64-bit integer")
    return str(value)


def _trigger(fields: Mapping[str, str], timezone: tzinfo) -> TriggerEvent:
    for key, value in fields.items():
        limit = MAX_LASTCHANGE if key == LASTCHANGE else MAX_ID if key in SHORT else MAX_TEXT
        if len(value) > limit:
            raise BadInput(f"{key} is over {limit} characters")
        if "\x00" in value:
            raise BadInput(f"{key} holds a NUL character")
    missing = [k for k in ("host", "triggerid", "value") if not fields.get(k)]
    if missing:
        raise BadInput(f"missing {', '.join(missing)}")
    value = fields["value"]
    if value not in ("0", "1"):
        raise BadInput(f"value {value!r}: 1 (PROBLEM) or 0 (OK)")
    priority = fields.get("priority", "0")
    if priority not in ("0", "1", "2", "3", "4", "5"):
        raise BadInput(f"priority {priority!r}: Zabbix's NSEVERITY, 0 to 5")
    lastchange = fields.get(LASTCHANGE)
    return TriggerEvent(
        host=fields["host"],
        triggerid=fields["triggerid"],
        problem=value == "1",
        priority=int(priority),
        description=fields.get("description", ""),
        rawtext=fields.get("rawtext", ""),
        expression=fields.get("expression", ""),
        hostid=fields.get("hostid", ""),
        hostip=fields.get("hostip", ""),
        lastchange=parse_time(lastchange, timezone) if lastchange else None,
        eventid=fields.get("eventid") or None,
    )


def parse_time(text: str, timezone: tzinfo = UTC) -> datetime:
    """Zabbix's ``{EVENT.DATE} {EVENT.TIME}`` (``2017.08.24 12:00:21``) in ``timezone``, or ISO 8601 (without a
    zone: in ``timezone``)."""
    form = _LASTCHANGE.fullmatch(text.strip())
    try:
        if form is None:
            raise ValueError(text)
        if form.group(1) is not None:
            year, month, day, hour, minute, second = (int(part) for part in form.groups()[:6])
            moment = datetime(year, month, day, hour, minute, second)
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"lastchange {text[:64]!r} is not a date (YYYY.MM.DD hh:mm:ss or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadInput(f"lastchange {text[:64]!r} is out of range") from None


# -- mapping ------------------------------------------------------------------


def reports(
    triggers: Sequence[TriggerEvent],
    mapping: TriggerMapping,
    *,
    received_at: datetime,
    new_id: Callable[[], str],
) -> Mapped:
    """The trigger events as southbound reports (see the module); a trigger no rule names is ignored."""
    mapped = Mapped()
    for trigger in triggers:
        rule = next((r for r in mapping.rules if r.matches(trigger)), None)
        if rule is None:
            why = "no trigger rule matches its rawtext or description (ingest.zabbix.triggers)"
            mapped.ignored.append(Ignored(trigger.name, f"trigger {trigger.triggerid}", why))
            continue
        status = EventStatus.DOWN if trigger.problem else EventStatus.UP
        ident = f"{trigger.eventid or 'trigger-' + trigger.triggerid}:{'problem' if trigger.problem else 'ok'}"
        hostname = mapping.hosts.get(trigger.host, trigger.host)
        mapped.events.append(
            FaultEvent(
                id=EventId(new_id()),
                time=trigger.lastchange or received_at,
                type=event_type(rule.family, status),
                hostname=bounded(hostname, MAX_ID, f"host {hostname[:64]!r}"),
                status=status,
                monitor=mapping.monitor,
                monitor_event_id=bounded(ident, MAX_ID, "eventid or triggerid"),
                received_at=received_at,
                severity=str(mapping.severities.get(trigger.priority, Severity.INDETERMINATE)),
                cause=clipped(trigger.name, MAX_CAUSE),
                alarm=trigger.alarm,
                related_to=bounded(rule.related_to or f"trigger:{trigger.triggerid}", MAX_ID, "related_to"),
            )
        )
    return mapped
