"""Monitors operators already run: Prometheus Alertmanager's webhook and Zabbix's media types.

``POST /v1/ingest/alertmanager`` takes Alertmanager's webhook payload
(version 4) and ``POST /v1/ingest/zabbix`` a Zabbix trigger event (Enea's
media type message as ``text/plain``, or the webhook media type's JSON). Both
map what they get to southbound reports (:mod:`vigil.monitor.ingest`, settings
group ``ingest``) and journal them through the intake, as ``POST /v1/event``
does: the answer comes once they are durable, with each report's outcome.
What no mapping names is ignored, counted, and answered 200 (Alertmanager
and Zabbix would only send it again). Bad input is a 4xx naming the problem,
recorded, and nothing of its payload is applied: a body that is not JSON (or
not text) 400; a wrong shape, a mapped alert without its host label, a
resolved alert without an end, an unknown host 422. ``GET /v1/ingest`` shows
what each source sent and the newest ignored and rejected inputs.

Callers need the monitor or admin role, as ``X-Auth-Token`` or as
``Authorization: Bearer`` (Alertmanager's ``http_config``); where the server
has ``monitor.key``, a body is signed as a southbound report is.
"""

import json
import re
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from vigil.api.contract import errors
from vigil.api.deps import Admin, Context
from vigil.api.fault_schemas import EventOutcome
from vigil.api.routes.southbound import Signed
from vigil.api.storable import JSON_NUMBER, Moment, StorableIn
from vigil.domain.faults import FaultEvent
from vigil.monitor import alertmanager
from vigil.monitor.ingest import Applied, EntryKind, Ingest, Source, Via
from vigil.monitor.reports import BadInput
from vigil.monitor.zabbix import LASTCHANGE_PATTERN, MAX_LASTCHANGE


def _ingest(ctx: Context) -> Ingest:
    if ctx.faults.ingest is None:
        raise HTTPException(503, "this server takes no ingest")
    return ctx.faults.ingest


class _Recorded(APIRoute):
    """A body FastAPI refuses (not JSON, a wrong shape) is recorded against the route's source before its 4xx."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        source = next((s for s in Source if self.path.endswith(f"/{s}")), None)

        async def recorded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                ingest = request.app.state.context.faults.ingest
                if ingest is not None and source is not None:
                    ingest.received(source)
                    ingest.rejected(source, Via.HTTP, "request", _problems(exc)[:1000])
                raise

        return recorded


def _problems(exc: RequestValidationError) -> str:
    """What the error handler answers (vigil.api.errors), in one line."""
    found = exc.errors()
    if any(e.get("type") == "json_invalid" for e in found):
        return "request body is not valid JSON"
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in found)


router = APIRouter(tags=["ingest"], route_class=_Recorded)

Label = Annotated[str, Field(max_length=4096)]
Labels = dict[str, Label]  # names unconstrained here, so the document states the NUL rule for them


class _In(StorableIn):
    """Fields other versions of Alertmanager add are ignored, not refused."""

    model_config = ConfigDict(extra="ignore")


class AlertIn(_In):
    status: Literal["firing", "resolved"] = Field(description="firing: a down report; resolved: an up report.")
    labels: Labels = Field(description="The alert's labels: alertname and the host label are read.")
    annotations: Labels = Field(
        default_factory=dict, description="summary (else description) becomes the report's cause."
    )
    starts_at: Moment = Field(alias="startsAt", description="When it began firing: a down report's time.")
    ends_at: Moment | None = Field(
        None, alias="endsAt", description="When it resolved: an up report's time (0001-01-01T00:00:00Z while firing)."
    )
    generator_url: Label = Field("", alias="generatorURL", description="Where Prometheus shows the rule.")
    fingerprint: str = Field(min_length=1, max_length=255, description="The report's monitor_event_id.")


class AlertmanagerWebhook(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "4",
                    "groupKey": '{}:{alertname="NodeDown"}',
                    "truncatedAlerts": 0,
                    "status": "firing",
                    "receiver": "vigil",
                    "groupLabels": {"alertname": "NodeDown"},
                    "commonLabels": {"alertname": "NodeDown", "instance": "10.0.0.11:9100", "job": "node"},
                    "commonAnnotations": {},
                    "externalURL": "http://alertmanager:9093",
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": {"alertname": "NodeDown", "instance": "10.0.0.11:9100", "job": "node"},
                            "annotations": {"summary": "node_exporter on 10.0.0.11:9100 is down"},
                            "startsAt": "2026-03-14T09:26:53.589Z",
                            "endsAt": "0001-01-01T00:00:00Z",
                            "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
                            "fingerprint": "96348a374dcd3f56",
                        }
                    ],
                }
            ]
        },
        extra="ignore",
    )

    version: Literal["4"] = Field(description="The payload's version: 4.")
    group_key: Label = Field("", alias="groupKey", description="The group's key, as Alertmanager logs it.")
    truncated_alerts: Annotated[int, Field(ge=0), JSON_NUMBER] = Field(
        0, alias="truncatedAlerts", description="Alerts left out (the receiver's max_alerts)."
    )
    status: Literal["firing", "resolved"] | None = Field(None, description="firing if any alert fires.")
    receiver: Label = Field("", description="The receiver's name in Alertmanager's configuration.")
    group_labels: Labels = Field(
        default_factory=dict, alias="groupLabels", description="The labels the group is made by (route group_by)."
    )
    common_labels: Labels = Field(
        default_factory=dict, alias="commonLabels", description="The labels every alert of the group has."
    )
    common_annotations: Labels = Field(
        default_factory=dict, alias="commonAnnotations", description="The annotations every alert has."
    )
    external_url: Label = Field("", alias="externalURL", description="Alertmanager's own URL.")
    alerts: list[AlertIn] = Field(description="The group's alerts (server.max_body_bytes bounds them).")

    def notification(self) -> alertmanager.Notification:
        return alertmanager.Notification(
            version=self.version,
            group_key=self.group_key,
            status=self.status or "",
            receiver=self.receiver,
            truncated_alerts=self.truncated_alerts,
            alerts=[
                alertmanager.Alert(
                    status=alertmanager.AlertStatus(a.status),
                    labels=a.labels,
                    annotations=a.annotations,
                    starts_at=a.starts_at,
                    ends_at=a.ends_at,
                    generator_url=a.generator_url,
                    fingerprint=a.fingerprint,
                )
                for a in self.alerts
            ],
        )


ZabbixNumber = Annotated[str, Field(max_length=255)] | int  # webhook parameters are strings; a number is taken too


class ZabbixWebhook(BaseModel):
    """Zabbix's webhook media type posting its parameters: Enea's message's fields as a JSON object."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "host": "compute-1",
                    "hostid": "10105",
                    "hostip": "10.0.0.11",
                    "triggerid": "13491",
                    "eventid": "4711",
                    "description": "Zabbix agent on compute-1 is unreachable for 5 minutes",
                    "rawtext": "Zabbix agent on {HOST.NAME} is unreachable for 5 minutes",
                    "expression": "{10105}=1",
                    "value": "1",
                    "priority": "4",
                    "lastchange": "2026.03.14 09:26:53",
                }
            ]
        },
    )

    host: str = Field(min_length=1, max_length=255, description="{HOST.NAME1}: the host (ingest.zabbix.hosts maps it).")
    triggerid: ZabbixNumber = Field(description="{TRIGGER.ID}.")
    value: Literal["0", "1", 0, 1] = Field(description="{TRIGGER.VALUE}: 1 PROBLEM (down), 0 OK (up).")
    priority: Literal["0", "1", "2", "3", "4", "5", 0, 1, 2, 3, 4, 5] = Field(
        "0", description="{TRIGGER.NSEVERITY}: 0 not classified .. 5 disaster (ingest.zabbix.severities)."
    )
    description: str = Field("", max_length=4096, description="{TRIGGER.NAME}.")
    rawtext: str = Field("", max_length=4096, description="{TRIGGER.NAME.ORIG}: matched by ingest.zabbix.triggers.")
    expression: str = Field("", max_length=4096, description="{TRIGGER.EXPRESSION}.")
    hostid: ZabbixNumber = Field("", description="{HOST.ID1}.")
    hostip: str = Field("", max_length=255, description="{HOST.IP1}.")
    eventid: ZabbixNumber = Field("", description="{EVENT.ID}: with it, the report's monitor_event_id.")
    lastchange: str = Field(
        "",
        max_length=MAX_LASTCHANGE,
        pattern=f"^({LASTCHANGE_PATTERN})?$",
        description="{EVENT.DATE} {EVENT.TIME} (2026.03.14 09:26:53) or ISO 8601: the time.",
    )


ENEA_EXAMPLE = (
    "host=compute-1 hostid=10105 hostip=10.0.0.11 triggerid=13491 "
    "description=Zabbix agent on compute-1 is unreachable for 5 minutes "
    "rawtext=Zabbix agent on {HOST.NAME} is unreachable for 5 minutes expression={10105}=1 value=1 priority=4 "
    "lastchange=2026.03.14 09:26:53"
)
ZABBIX_BODY = {
    "requestBody": {
        "required": True,
        "description": "Enea's media type message (text/plain: key=value fields, on one line or one per line), or "
        "the webhook media type's parameters (application/json).",
        "content": {
            "text/plain": {"schema": {"type": "string", "minLength": 1}, "example": ENEA_EXAMPLE},
            "application/json": {"schema": ZabbixWebhook.model_json_schema()},
        },
    }
}


class IgnoredOut(BaseModel):
    name: str = Field(description="The alert's name, or the trigger's.")
    id: str = Field(description="The alert's fingerprint, or the trigger's id.")
    reason: str = Field(description="Why nothing was done with it.")


class IngestOut(BaseModel):
    reports: int = Field(description="Southbound reports made and journaled (durable when this answer comes).")
    outcomes: dict[str, int] = Field(description="How many reports had each outcome (fault_opened, duplicate, ...).")
    events: list[EventOutcome] = Field(description="Each report, with its outcome and fault.")
    ignored: list[IgnoredOut] = Field(description="What no mapping names (ingest.alertmanager.alerts, ...triggers).")
    truncated_alerts: int = Field(0, description="Alerts Alertmanager left out of its payload (its max_alerts).")


def _answer(applied: Applied) -> IngestOut:
    return IngestOut(
        reports=len(applied.events),
        outcomes=dict(Counter(str(e.outcome) for e in applied.events)),
        events=[_outcome(e) for e in applied.events],
        ignored=[IgnoredOut(name=i.name, id=i.id, reason=i.reason) for i in applied.ignored],
        truncated_alerts=applied.truncated,
    )


def _outcome(event: FaultEvent) -> EventOutcome:
    return EventOutcome(id=event.id, type=event.type, hostname=event.hostname, outcome=event.outcome, fault=event.fault)


@router.post(
    "/ingest/alertmanager",
    summary="Prometheus Alertmanager's webhook (version 4)",
    responses=errors(503),
)
async def post_alertmanager(ctx: Context, _: Signed, payload: AlertmanagerWebhook) -> IngestOut:
    """Alertmanager's webhook payload, version 4 (`webhook_configs`, with `http_config.authorization` carrying a
    monitor token as Bearer). Each alert whose `alertname` is in `ingest.alertmanager.alerts` becomes a southbound
    report: firing `<family>.down` at `startsAt`, resolved `<family>.up` at `endsAt`, monitor `alertmanager`,
    `monitor_event_id` its fingerprint, host from its `ingest.alertmanager.host_label` label (`instance` without
    its port, by default) through `ingest.alertmanager.hosts`. Other alerts are ignored (counted, answered 200).

    Answered once the reports are durable, with their outcomes; a repeat of a firing alert is a `duplicate`. A
    mapped alert without its host label, a resolved one without `endsAt`, or an unknown host is a 422, and no
    alert of the payload is applied."""
    ingest = _ingest(ctx)
    ingest.received(Source.ALERTMANAGER)
    try:
        return _answer(await ingest.alertmanager(payload.notification()))
    except BadInput as exc:
        raise HTTPException(422, f"{exc}; no alert of this payload was applied") from None


@router.post(
    "/ingest/zabbix",
    summary="A Zabbix trigger event (Enea's media type message, or the webhook media type's JSON)",
    responses=errors(503),
    openapi_extra=ZABBIX_BODY,
)
async def post_zabbix(ctx: Context, _: Signed, request: Request) -> IngestOut:
    """A Zabbix trigger event: Enea's media type message as `text/plain` (`host=... hostid=... hostip=...
    triggerid=... description=... rawtext=... expression=... value=... priority=... lastchange=...`), or the
    same fields as a JSON object (the webhook media type's parameters). A trigger whose rawtext or description
    matches a rule of `ingest.zabbix.triggers` becomes a southbound report: value 1 (PROBLEM) `<family>.down`,
    0 (OK) `<family>.up`, at `lastchange`, monitor `zabbix`, severity from `priority` (NSEVERITY 0-5). Other
    triggers are ignored (counted, answered 200).

    Answered once the report is durable, with its outcome. A body that is neither UTF-8 text nor JSON is a 400;
    a missing or bad field, or an unknown host, a 422, and nothing is applied."""
    ingest = _ingest(ctx)
    ingest.received(Source.ZABBIX)
    body = await request.body()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise _bad(ingest, 400, "the body is not UTF-8 text") from None
    as_json = _JSON.fullmatch(media) is not None if media else text.lstrip().startswith("{")
    try:
        if media and media != "text/plain" and not as_json:
            raise _bad(ingest, 400, f"send text/plain (Enea's message) or application/json (the webhook), not {media}")
        if not as_json:
            return _answer(await ingest.zabbix_text(text))
        try:
            decoded = json.loads(text)
        except ValueError as exc:
            raise _bad(ingest, 400, f"request body is not valid JSON: {exc}") from None
        return _answer(await ingest.zabbix_json(decoded))
    except BadInput as exc:
        raise HTTPException(422, f"{exc}; nothing was applied") from None


_JSON = re.compile(r"application/([a-z0-9.+-]*\+)?json")


def _bad(ingest: Ingest, status: int, why: str) -> HTTPException:
    ingest.rejected(Source.ZABBIX, Via.HTTP, "request", why)
    return HTTPException(status, why)


class EntryOut(BaseModel):
    at: datetime = Field(description="When.")
    via: Via = Field(description="http or amqp.")
    kind: EntryKind = Field(description="ignored: not mapped; rejected: refused.")
    what: str = Field(description="The alert, trigger or request.")
    why: str = Field(description="The reason.")


class QueueOut(BaseModel):
    queue: str = Field(description="The queue consumed.")
    connected: bool = Field(description="Consuming now.")
    backlog_at_start: int | None = Field(description="Messages already queued when consuming began.")
    received: int = Field(description="Messages received.")
    acked: int = Field(description="Handled: applied (durable) or ignored, and acknowledged.")
    rejected: int = Field(description="Bad input or refused: rejected without requeue.")
    requeued: int = Field(description="Failed for a reason of Vigil's own: requeued after a backoff.")
    last_error: str | None = Field(description="The latest rejection or failure.")


class SourceOut(BaseModel):
    received: int = Field(description="Requests (and queue messages) received.")
    reports: int = Field(description="Southbound reports made.")
    outcomes: dict[str, int] = Field(description="Reports by outcome.")
    ignored: int = Field(description="Alerts or triggers no mapping names.")
    rejected: int = Field(description="Requests or messages refused as bad input or naming an unknown host.")
    last_received_at: datetime | None = Field(description="When the latest came.")
    recent: list[EntryOut] = Field(description="The newest ignored and rejected inputs, oldest first (at most 50).")
    queue: QueueOut | None = Field(None, description="The AMQP queue consumer (Zabbix, with ingest.zabbix.amqp_url).")


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@router.get("/ingest", summary="What Alertmanager and Zabbix sent, admin only", responses=errors(503))
async def get_ingest(ctx: Context, _: Admin) -> dict[str, SourceOut]:
    """Per source (`alertmanager`, `zabbix`): requests and messages received, the reports made and their outcomes,
    how many alerts or triggers were ignored (not mapped) and inputs rejected, the newest ignored and rejected with
    their reasons, and for Zabbix the AMQP queue consumer's state."""
    ingest = _ingest(ctx)
    queue = ingest.queue_state() if ingest.queue_state is not None else None
    out: dict[str, SourceOut] = {}
    for source, stats in ingest.book.sources.items():
        out[source] = SourceOut(
            received=stats.received,
            reports=stats.reports,
            outcomes=dict(stats.outcomes),
            ignored=stats.ignored,
            rejected=stats.rejected,
            last_received_at=_when(stats.last_received_at) if stats.last_received_at is not None else None,
            recent=[EntryOut(at=_when(e.at), via=e.via, kind=e.kind, what=e.what, why=e.why) for e in stats.recent],
            queue=QueueOut.model_validate(queue) if source is Source.ZABBIX and queue is not None else None,
        )
    return out
