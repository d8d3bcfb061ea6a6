"""Maintenance messages through the notifier, as OpenStack Fenix reaches app
managers: an Aodh event alarm on ``maintenance.scheduled`` (or
``maintenance.host`` for admins) whose body carries the payload as traits,
recorded in the same outbox and retried like the fault alarms.

Vigil's engines run for real (SQLite store, the example cloud, the HTTP
sender); the subscribers are real webhook receivers on loopback ports.
"""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support import Receiver

from vigil.consumer.notifications import parse_maintenance, parse_notification
from vigil.domain.alarms import Lifecycle
from vigil.domain.deliveries import DeliveryState, notification_id
from vigil.domain.maintenance import HOST_EVENT_TYPE, PROJECT_EVENT_TYPE, MaintenanceMessage, SessionId
from vigil.domain.subscriptions import (
    PayloadFormat,
    Subscription,
    SubscriptionFilter,
    SubscriptionId,
    matches_message,
)
from vigil.notifier.formats import render_message
from vigil.settings import load_settings
from vigil.wiring import BackgroundServer, Runtime, running

EXAMPLE = Path(__file__).parents[2] / "examples" / "cloud.yaml"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "aodh_alarm_webhook.schema.json").read_text())
CREATED_AT = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        cloud={"topology": EXAMPLE},
        notifier={"retry_initial_s": 0.01, "retry_max_delay_s": 0.05, "retry_horizon_s": 30, "timeout_s": 2.0},
    )
    async with running(settings) as started:
        yield started


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    async with BackgroundServer(hooks.app) as server:
        hooks.url = server.url
        yield hooks


def subscription(
    url: str,
    *,
    project: str = "vnf-a",
    admin: bool = False,
    event_types: list[str] | None = None,
    format_: PayloadFormat = PayloadFormat.AODH,
) -> Subscription:
    return Subscription(
        id=SubscriptionId(str(uuid.uuid4())),
        project=project,
        admin=admin,
        callbacks=[url],
        format=format_,
        created_at=CREATED_AT,
        filter=SubscriptionFilter(event_types=list(event_types or [])),
        name=f"maintenance {url.rsplit('/', 1)[-1]}",
    )


async def subscribe(runtime: Runtime, *subscriptions: Subscription) -> None:
    await runtime.cloud.transactions.save_records(*subscriptions)
    for s in subscriptions:
        runtime.faults.subscriptions.add(s)


def project_message(project: str = "vnf-a", step: str = "PLANNED_MAINTENANCE", **payload: Any) -> MaintenanceMessage:
    session = SessionId("session-1")
    body: dict[str, Any] = {
        "session_id": session,
        "project_id": project,
        "instance_ids": ["vnf-a-app-act", "vnf-a-lb"],
        "allowed_actions": ["MIGRATE", "LIVE_MIGRATE", "OWN_ACTION"],
        "state": step,
        "actions_at": "2026-03-01T13:00:00.000000Z",
        "reply_at": "2026-03-01T12:05:00.000000Z",
        "reply_url": f"http://vigil.example/v1/maintenance/{session}/{project}",
        "metadata": {"openstack_version": "Zed", "reason": "kernel [CVE] fix"},
        **payload,
    }
    return MaintenanceMessage(
        id=f"{session}/{project}/{step}",
        event_type=PROJECT_EVENT_TYPE,
        session_id=session,
        project=project,
        payload=body,
        created_at=CREATED_AT,
    )


def host_message(host: str = "compute-1", step: str = "IN_MAINTENANCE") -> MaintenanceMessage:
    session = SessionId("session-1")
    return MaintenanceMessage(
        id=f"{session}/host:{host}/{step}",
        event_type=HOST_EVENT_TYPE,
        session_id=session,
        project=None,
        payload={"session_id": session, "host": host, "state": step},
        created_at=CREATED_AT,
    )


# -- who receives what ----------------------------------------------------------


async def test_a_project_message_reaches_its_project_and_admins_that_name_the_event_type(
    runtime: Runtime, receiver: Receiver
) -> None:
    url = receiver.url
    await subscribe(
        runtime,
        subscription(f"{url}/a", event_types=[PROJECT_EVENT_TYPE]),
        subscription(f"{url}/a-both", event_types=["instance.down", PROJECT_EVENT_TYPE]),
        subscription(f"{url}/a-any"),  # no event types: every alarm, no maintenance message
        subscription(f"{url}/a-faults", event_types=["instance.down"]),
        subscription(f"{url}/a-sol003", event_types=[PROJECT_EVENT_TYPE], format_=PayloadFormat.SOL003),
        subscription(f"{url}/b", project="vnf-b", event_types=[PROJECT_EVENT_TYPE]),
        subscription(f"{url}/admin", project="admin", admin=True, event_types=[PROJECT_EVENT_TYPE]),
        subscription(f"{url}/admin-any", project="admin", admin=True),
        subscription(f"{url}/admin-host", project="admin", admin=True, event_types=[HOST_EVENT_TYPE]),
    )
    message = project_message()
    started = await runtime.faults.notifier.send_message(message)
    assert sorted(d.url.rsplit("/", 1)[-1] for d in started) == ["a", "a-both", "admin"]
    await runtime.faults.notifier.drain()
    assert sorted(r["path"] for r in receiver.received) == ["/a", "/a-both", "/admin"]
    for note in receiver.received:
        event = note["body"]["reason_data"]["event"]
        assert event["event_type"] == PROJECT_EVENT_TYPE
        assert note["headers"]["x-vigil-notification-id"] == event["message_id"]


async def test_a_host_message_reaches_admins_that_name_it_only(runtime: Runtime, receiver: Receiver) -> None:
    url = receiver.url
    await subscribe(
        runtime,
        subscription(f"{url}/admin-host", project="admin", admin=True, event_types=[HOST_EVENT_TYPE]),
        subscription(f"{url}/admin-project", project="admin", admin=True, event_types=[PROJECT_EVENT_TYPE]),
        subscription(f"{url}/admin-any", project="admin", admin=True),
        # A member cannot make this through the API; should one exist, it still hears nothing.
        subscription(f"{url}/a-host", event_types=[HOST_EVENT_TYPE, PROJECT_EVENT_TYPE]),
    )
    await runtime.faults.notifier.send_message(host_message())
    await runtime.faults.notifier.drain()
    [note] = receiver.received
    assert note["path"] == "/admin-host"
    notice = parse_maintenance(note["body"], note["headers"])
    assert notice is not None
    assert notice.is_host
    assert notice.payload == {"session_id": "session-1", "host": "compute-1", "state": "IN_MAINTENANCE"}
    traits = {t[0] for t in note["body"]["reason_data"]["event"]["traits"]}
    assert "project_id" not in traits
    assert "tenant_id" not in traits


def test_the_rule_is_pure_and_asks_for_the_event_type_by_name() -> None:
    message = project_message()
    assert matches_message(subscription("http://x/a", event_types=[PROJECT_EVENT_TYPE]), message)
    assert not matches_message(subscription("http://x/a"), message)
    assert not matches_message(subscription("http://x/a", event_types=[HOST_EVENT_TYPE]), message)
    assert not matches_message(subscription("http://x/b", project="vnf-b", event_types=[PROJECT_EVENT_TYPE]), message)
    admin = subscription("http://x/admin", project="admin", admin=True, event_types=[PROJECT_EVENT_TYPE])
    assert matches_message(admin, message)
    assert not matches_message(admin, host_message())


# -- the body -------------------------------------------------------------------


async def test_the_body_is_an_aodh_event_alarm_that_parses_back_to_the_payload(
    runtime: Runtime, receiver: Receiver
) -> None:
    sub = subscription(f"{receiver.url}/vnfm", event_types=[PROJECT_EVENT_TYPE])
    await subscribe(runtime, sub)
    message = project_message()
    await runtime.faults.notifier.send_message(message)
    [note] = await receiver.wait_for(1, "/vnfm")
    body = note["body"]
    jsonschema.validate(body, SCHEMA)
    expected_nid = notification_id(message.id, 1, sub.id)
    assert (body["alarm_id"], body["alarm_name"], body["severity"]) == (sub.id, sub.name, "low")
    assert (body["previous"], body["current"]) == ("ok", "alarm")
    event = body["reason_data"]["event"]
    assert (event["event_type"], event["message_id"], event["generated"]) == (
        PROJECT_EVENT_TYPE,
        expected_nid,
        "2026-03-01T12:00:00.250000Z",
    )
    traits = {t[0]: (t[1], t[2]) for t in event["traits"]}
    assert traits["instance_ids"] == (1, '["vnf-a-app-act", "vnf-a-lb"]')  # JSON text, as Fenix's VNFM loads it
    assert traits["metadata"] == (1, json.dumps(message.payload["metadata"]))
    assert traits["project_id"] == traits["tenant_id"] == (1, "vnf-a")
    assert traits["vigil_notification_id"] == (1, expected_nid)

    notice = parse_maintenance(body, note["headers"])
    assert notice is not None
    assert (notice.id, notice.event_type, notice.session_id, notice.state) == (
        expected_nid,
        PROJECT_EVENT_TYPE,
        "session-1",
        "PLANNED_MAINTENANCE",
    )
    assert notice.payload == message.payload
    assert parse_maintenance(body) == notice  # the id is in the traits too
    # A fault-alarm reader still reads it as an Aodh alarm, and it names no alarm kind.
    assert parse_notification(body, note["headers"], received_at=0).kind == PROJECT_EVENT_TYPE
    await runtime.faults.notifier.drain()


def test_datetimes_become_datetime_traits_and_empty_fields_are_filled_back() -> None:
    sub = subscription("http://x/vnfm", event_types=[PROJECT_EVENT_TYPE])
    at = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    message = project_message(
        step="INSTANCE_ACTION_DONE", actions_at=at, reply_at=None, metadata={}, instance_ids=("vm-1",)
    )
    nid = notification_id(message.id, 1, sub.id)
    body = json.loads(render_message(sub, message, nid))
    assert body == json.loads(render_message(sub, message, nid))  # the same bytes each time
    traits = {t[0]: (t[1], t[2]) for t in body["reason_data"]["event"]["traits"]}
    assert traits["actions_at"] == (4, "2026-03-01T13:00:00.000000Z")
    assert "reply_at" not in traits
    notice = parse_maintenance(body)
    assert notice is not None
    assert notice.payload == {
        **message.payload,
        "actions_at": "2026-03-01T13:00:00.000000Z",
        "reply_at": None,
        "instance_ids": ["vm-1"],
    }


def test_only_the_aodh_format_carries_messages() -> None:
    sub = subscription("http://x/s", event_types=[PROJECT_EVENT_TYPE], format_=PayloadFormat.SOL003)
    with pytest.raises(ValueError, match="Aodh"):
        render_message(sub, project_message(), notification_id("m", 1, sub.id))


# -- the outbox ---------------------------------------------------------------------


async def test_a_receiver_that_answers_503_gets_the_message_again_with_the_same_id(
    runtime: Runtime, receiver: Receiver
) -> None:
    receiver.statuses = [503]
    sub = subscription(f"{receiver.url}/flaky", event_types=[PROJECT_EVENT_TYPE])
    await subscribe(runtime, sub)
    message = project_message()
    [started] = await runtime.faults.notifier.send_message(message)
    [note] = await receiver.wait_for(1, "/flaky")
    await runtime.faults.notifier.drain()
    assert [r["status"] for r in receiver.received] == [503, 200]
    assert {r["headers"]["x-vigil-notification-id"] for r in receiver.received} == {started.notification}
    assert receiver.received[0]["body"] == note["body"]  # the same bytes on every attempt

    [logged] = await runtime.store.deliveries(subscription=sub.id)
    assert (logged.id, logged.notification) == (started.id, notification_id(message.id, 1, sub.id))
    assert (logged.state, logged.attempts, logged.last_status) == (DeliveryState.DELIVERED, 2, 200)
    assert (logged.alarm, logged.alarm_version, logged.lifecycle) == (message.id, 1, Lifecycle.RAISED)
    assert (logged.fault, logged.project) == (None, "vnf-a")
    assert json.loads(logged.body) == note["body"]


async def test_publish_records_the_deliveries_in_the_callers_unit_of_work(runtime: Runtime, receiver: Receiver) -> None:
    await subscribe(
        runtime,
        subscription(f"{receiver.url}/a", event_types=[PROJECT_EVENT_TYPE]),
        subscription(f"{receiver.url}/admin", project="admin", admin=True, event_types=[HOST_EVENT_TYPE]),
    )
    changes = runtime.cloud.transactions.begin("maintenance step")
    notifier = runtime.faults.notifier
    started = notifier.publish_message(project_message(), changes) + notifier.publish_message(host_message(), changes)
    assert {d.state for d in started} == {DeliveryState.PENDING}
    await runtime.cloud.transactions.commit(changes)
    await receiver.wait_for(2)
    await notifier.drain()
    logged = await runtime.store.deliveries()
    assert sorted(d.id for d in logged) == sorted(d.id for d in started)
    assert {d.state for d in logged} == {DeliveryState.DELIVERED}
    assert [d.project for d in await runtime.store.deliveries(project="vnf-a")] == ["vnf-a"]


async def test_no_subscriber_no_delivery(runtime: Runtime) -> None:
    await subscribe(runtime, subscription("http://127.0.0.1:9/a", event_types=["instance.down"]))
    assert await runtime.faults.notifier.send_message(project_message()) == []
    assert await runtime.store.deliveries() == []
