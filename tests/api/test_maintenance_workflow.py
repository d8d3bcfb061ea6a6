"""Maintenance sessions end to end over real HTTP: a real Vigil server on the
example cloud, app managers played by real webhook receivers that answer
through the project reply endpoint, and an admin subscriber to host messages.

The happy path, then every failure path (NACK, a missed reply window, a
migration that fails, one that runs too long, a failing action, a cancel, a
restart): each must end MAINTENANCE_FAILED with its reason, every host back
to enabled and out of maintenance, and no instance lost.
"""

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Api
from support import Receiver, fresh_postgres_database

from vigil.consumer.notifications import parse_maintenance
from vigil.settings import Settings

Answer = Callable[[dict[str, Any]], dict[str, Any] | None]


def ack_all(payload: dict[str, Any]) -> dict[str, Any] | None:
    """ACK every message that wants a reply, MIGRATE for every instance."""
    state = payload["state"]
    if state == "INSTANCE_ACTION_DONE":
        return None
    return {"state": f"ACK_{state}", "instance_actions": dict.fromkeys(payload["instance_ids"], "MIGRATE")}


@dataclass
class Apps:
    """Both projects' app managers and the admin's host-message subscriber."""

    receiver: Receiver
    tokens: dict[str, str]
    api_url: str
    answer: Answer = ack_all
    messages: list[dict[str, Any]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def on_receive(self, entry: dict[str, Any]) -> None:
        notice = parse_maintenance(entry["body"], entry["headers"])
        assert notice is not None, entry["body"]
        payload = dict(notice.payload, event_type=notice.event_type, path=entry["path"])
        self.messages.append(payload)
        if notice.is_host:
            return
        reply = self.answer(payload)
        if reply is not None:  # answered after the webhook returns, as an app manager does
            task = asyncio.create_task(self._reply(payload, reply))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _reply(self, payload: dict[str, Any], reply: dict[str, Any]) -> None:
        project = payload["project_id"]
        async with httpx.AsyncClient(headers={"X-Auth-Token": self.tokens[project]}, timeout=10) as client:
            url = f"{self.api_url}/v1/maintenance/{payload['session_id']}/{project}"
            answered = await client.put(url, json=reply)
            assert answered.status_code == 200, answered.text

    def project_states(self, project: str) -> list[str]:
        return [
            m["state"]
            for m in self.messages
            if m.get("project_id") == project and m["event_type"].endswith("scheduled")
        ]

    def host_messages(self) -> list[tuple[str, str]]:
        return [(m["state"], m.get("host") or "") for m in self.messages if m["event_type"] == "maintenance.host"]


async def app_managers(api: Api, receiver: Receiver) -> Apps:
    """Both projects' app managers on a server the test started itself."""
    apps = Apps(receiver, {"vnf-a": "vnf-a-token", "vnf-b": "vnf-b-token"}, api.url)
    receiver.on_receive = apps.on_receive
    for token, path in (("vnf-a-token", "/vnf-a"), ("vnf-b-token", "/vnf-b")):
        async with api.client(token) as client:
            body = {"callbacks": [f"{receiver.url}{path}"], "filter": {"event_types": ["maintenance.scheduled"]}}
            assert (await client.post("/v1/subscriptions", json=body)).status_code == 201
    return apps


@pytest.fixture
async def apps(
    api: Api, admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, vnf_b: httpx.AsyncClient, receiver: Receiver
) -> Apps:
    found = Apps(receiver, {"vnf-a": "vnf-a-token", "vnf-b": "vnf-b-token"}, api.url)
    receiver.on_receive = found.on_receive
    for client, path, types in (
        (vnf_a, "/vnf-a", ["maintenance.scheduled"]),
        (vnf_b, "/vnf-b", ["maintenance.scheduled"]),
        (admin, "/admin", ["maintenance.host"]),
    ):
        body = {"callbacks": [f"{receiver.url}{path}"], "format": "aodh", "filter": {"event_types": types}}
        assert (await client.post("/v1/subscriptions", json=body)).status_code == 201
    return found


async def placement(admin: httpx.AsyncClient) -> dict[str, str]:
    instances = (await admin.get("/v1/instances")).json()["instances"]
    return {i["id"]: i["host"] for i in instances}


async def hosts(admin: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in (await admin.get("/v1/hosts")).json()["hosts"]}


async def start(admin: httpx.AsyncClient, **body: Any) -> str:
    created = await admin.post("/v1/maintenance", json={"state": "MAINTENANCE", **body})
    assert created.status_code == 200, created.text
    return str(created.json()["session_id"])


async def finished(admin: httpx.AsyncClient, session: str, within_s: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(within_s):
        while True:
            shown = (await admin.get(f"/v1/maintenance/{session}")).json()
            if shown["state"] in ("MAINTENANCE_DONE", "MAINTENANCE_FAILED"):
                return dict(shown)
            await asyncio.sleep(0.02)


async def no_migration(admin: httpx.AsyncClient, within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while True:
            instances = (await admin.get("/v1/instances")).json()["instances"]
            if not any(i["migrating_to"] for i in instances):
                return
            await asyncio.sleep(0.02)


async def assert_rolled_back(admin: httpx.AsyncClient, before: dict[str, str], session_hosts: list[str]) -> None:
    """No instance lost, each where it was or moved whole, hosts back as they were."""
    after = await placement(admin)
    assert set(after) == set(before)
    now = await hosts(admin)
    for name in session_hosts:
        assert now[name]["in_maintenance"] is False
        assert now[name]["status"] == "UP", now[name]
    instances = (await admin.get("/v1/instances")).json()["instances"]
    assert all(i["state"] in ("ACTIVE", "SHUTOFF") for i in instances), instances


SESSION_HOSTS = ["compute-1", "compute-2", "compute-3", "compute-4", "compute-5"]


async def test_a_rolling_maintenance_of_every_enabled_host_ends_done_with_nothing_lost(
    admin: httpx.AsyncClient, apps: Apps
) -> None:
    before = await placement(admin)
    session = await start(admin, hosts=SESSION_HOSTS, actions=[{"plugin": "upgrade", "duration_s": 0.01}])
    done = await finished(admin, session)
    assert done["state"] == "MAINTENANCE_DONE", done
    assert done["percent_done"] == 100
    after = await placement(admin)
    assert set(after) == set(before)
    moved = sum(1 for i in before if after[i] != before[i])
    assert done["migrations"] >= moved > 0
    # The anti-affinity pair never shares a host at the end (the planner keeps it apart all along).
    assert after["vnf-a-app-act"] != after["vnf-a-app-stby"]
    now = await hosts(admin)
    assert all(now[h]["status"] == "UP" and not now[h]["in_maintenance"] for h in SESSION_HOSTS)
    assert now["compute-6"]["status"] == "MAINTENANCE"  # not in the session: left as it was
    # Each host went into maintenance and came out of it, one at a time.
    host_messages = apps.host_messages()
    assert sorted(h for s, h in host_messages if s == "IN_MAINTENANCE") == sorted(SESSION_HOSTS)
    assert sorted(h for s, h in host_messages if s == "MAINTENANCE_COMPLETE") == sorted(SESSION_HOSTS)
    for n in range(0, len(host_messages), 2):
        assert host_messages[n][0] == "IN_MAINTENANCE"
        assert host_messages[n + 1] == (
            "MAINTENANCE_COMPLETE",
            host_messages[n][1],
        )
    for project in ("vnf-a", "vnf-b"):
        states = apps.project_states(project)
        assert states[0] == "MAINTENANCE", states
        assert states[-1] == "MAINTENANCE_COMPLETE", states
        assert "PLANNED_MAINTENANCE" in states or "PREPARE_MAINTENANCE" in states
    first = next(m for m in apps.messages if m.get("state") == "MAINTENANCE")
    assert first["reply_url"] == f"{apps.api_url}/v1/maintenance/{session}/{first['project_id']}"
    assert first["reply_at"]
    assert first["actions_at"]
    detail = (await admin.get(f"/v1/maintenance/{session}/detail")).json()
    assert {h["host"] for h in detail["hosts"] if h["maintained"]} == set(SESSION_HOSTS)
    assert {p["reply"] for p in detail["projects"]} == {"ACK_MAINTENANCE_COMPLETE"}


async def test_hosts_already_empty_are_maintained_first_without_a_prepare_step(
    admin: httpx.AsyncClient, apps: Apps
) -> None:
    before = await placement(admin)
    empty = [h for h in SESSION_HOSTS if h not in before.values()]
    busy = [h for h in SESSION_HOSTS if h in before.values()]
    assert empty, "the example cloud has a host with no instance"
    session = await start(admin, hosts=[*busy, *empty])
    assert (await finished(admin, session))["state"] == "MAINTENANCE_DONE"
    order = [h for s, h in apps.host_messages() if s == "IN_MAINTENANCE"]
    assert set(order[: len(empty)]) == set(empty)
    assert "PREPARE_MAINTENANCE" not in apps.project_states("vnf-a") + apps.project_states("vnf-b")


async def test_a_nack_fails_the_session_and_rolls_every_host_back(admin: httpx.AsyncClient, apps: Apps) -> None:
    def nack_planned(payload: dict[str, Any]) -> dict[str, Any] | None:
        if payload["state"] == "PLANNED_MAINTENANCE" and payload["project_id"] == "vnf-a":
            return {"state": "NACK_PLANNED_MAINTENANCE"}
        return ack_all(payload)

    apps.answer = nack_planned
    before = await placement(admin)
    session = await start(admin, hosts=SESSION_HOSTS)
    failed = await finished(admin, session)
    assert failed["state"] == "MAINTENANCE_FAILED"
    assert "vnf-a answered NACK_PLANNED_MAINTENANCE" in failed["reason"]
    await assert_rolled_back(admin, before, SESSION_HOSTS)
    assert ("MAINTENANCE_FAILED", "") in apps.host_messages()
    failure = next(m for m in apps.messages if m["state"] == "MAINTENANCE_FAILED" and m.get("host") is None)
    assert failure["reason"] == failed["reason"]
    # The projects asked so far are told too (no answer expected), so an app can undo a scale-in.
    await apps.receiver.wait_for(1, path="/vnf-b")
    for project in ("vnf-a", "vnf-b"):
        async with asyncio.timeout(5):
            while "MAINTENANCE_FAILED" not in apps.project_states(project):
                await apps.receiver.wait_for(len(apps.receiver.delivered()) + 1)
    told = [m for m in apps.messages if m["state"] == "MAINTENANCE_FAILED" and m.get("project_id")]
    assert {m["reason"] for m in told} == {failed["reason"]}


async def test_a_missed_reply_window_fails_the_session(
    tmp_path: Path,
    settings: Settings,
    restart: Callable[[Settings], AbstractAsyncContextManager[Api]],
    receiver: Receiver,
) -> None:
    quick = settings.model_copy(update={"maintenance": settings.maintenance.model_copy(update={"reply_window_s": 0.3})})
    async with restart(quick) as api, api.client("admin-token") as admin, api.client("vnf-a-token") as vnf_a:
        body = {
            "callbacks": [f"{receiver.url}/a"],
            "format": "aodh",
            "filter": {"event_types": ["maintenance.scheduled"]},
        }
        assert (await vnf_a.post("/v1/subscriptions", json=body)).status_code == 201
        before = await placement(admin)
        session = await start(admin, hosts=["compute-1"])
        failed = await finished(admin, session)
        assert failed["state"] == "MAINTENANCE_FAILED"
        assert "did not answer MAINTENANCE within 0.3 s" in failed["reason"]
        assert "vnf-a" in failed["reason"]
        await assert_rolled_back(admin, before, ["compute-1"])
        late = await vnf_a.put(f"/v1/maintenance/{session}/vnf-a", json={"state": "ACK_MAINTENANCE"})
        assert late.status_code == 409


async def test_a_migration_that_fails_rolls_back_and_loses_nothing(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    slow = settings.model_copy(update={"cloud": settings.cloud.model_copy(update={"cold_migration_s": 0.5})})
    async with restart(slow) as api, api.client("admin-token") as admin:
        await app_managers(api, receiver)
        before = await placement(admin)
        session = await start(admin, hosts=SESSION_HOSTS)
        # Break the destination of the first migration while it runs.
        async with asyncio.timeout(10):
            while True:
                moving = [i for i in (await admin.get("/v1/instances")).json()["instances"] if i["migrating_to"]]
                if moving:
                    break
                await asyncio.sleep(0.01)
        target = moving[0]["migrating_to"]
        assert (await admin.post(f"/v1/hosts/{target}/action", json={"action": "force-down"})).status_code == 200
        failed = await finished(admin, session)
        assert failed["state"] == "MAINTENANCE_FAILED"
        assert f"to {target} failed" in failed["reason"]
        assert (await admin.post(f"/v1/hosts/{target}/action", json={"action": "force-up"})).status_code == 200
        await assert_rolled_back(admin, before, SESSION_HOSTS)


async def test_a_migration_running_too_long_fails_the_session(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    slow = settings.model_copy(
        update={
            "cloud": settings.cloud.model_copy(update={"cold_migration_s": 0.6}),
            "maintenance": settings.maintenance.model_copy(update={"migration_timeout_s": 0.1}),
        }
    )
    async with restart(slow) as api, api.client("admin-token") as admin:
        await app_managers(api, receiver)
        before = await placement(admin)
        session = await start(admin, hosts=SESSION_HOSTS)
        failed = await finished(admin, session)
        assert failed["state"] == "MAINTENANCE_FAILED"
        assert "ran past 0.1 s" in failed["reason"]
        await no_migration(admin)  # the slow migration ends where it was going: the instance is not lost
        await assert_rolled_back(admin, before, SESSION_HOSTS)


async def test_cancel_rolls_back_then_delete_forgets(admin: httpx.AsyncClient, apps: Apps) -> None:
    apps.answer = lambda payload: None  # never answers: the session waits in MAINTENANCE
    before = await placement(admin)
    session = await start(admin, hosts=["compute-1", "compute-2"])
    await apps.receiver.wait_for(1, path="/vnf-a")
    cancelled = await admin.delete(f"/v1/maintenance/{session}")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "MAINTENANCE_FAILED"
    assert cancelled.json()["reason"] == "cancelled by the admin"
    await assert_rolled_back(admin, before, ["compute-1", "compute-2"])
    assert (await admin.delete(f"/v1/maintenance/{session}")).status_code == 204
    assert (await admin.get(f"/v1/maintenance/{session}")).status_code == 404


async def test_a_failing_script_action_fails_the_session_and_a_good_one_runs_per_host(
    tmp_path: Path, admin: httpx.AsyncClient, apps: Apps
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    mark = {"action": "mark", "dir": str(marks)}  # a script the server's configuration names (tests/api/conftest.py)
    session = await start(admin, hosts=["compute-3", "compute-5"], actions=[mark])
    assert (await finished(admin, session))["state"] == "MAINTENANCE_DONE"
    assert sorted(p.name for p in marks.iterdir()) == ["compute-3", "compute-5"]

    before = await placement(admin)
    session = await start(admin, hosts=["compute-3"], actions=[{"action": "disk-full"}])
    failed = await finished(admin, session)
    assert failed["state"] == "MAINTENANCE_FAILED"
    assert "exited 3: disk full" in failed["reason"]
    await assert_rolled_back(admin, before, ["compute-3"])


async def test_a_session_cut_off_by_a_restart_resumes_where_it_stood_and_is_done(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    """Stopped while it waited for the projects' first replies, the session is taken up by the next start: not
    asked again, the replies the app managers send to the server now up (their first attempt found none) let it go
    on, and it ends MAINTENANCE_DONE with every host back in service."""
    async with restart(settings) as api, api.client("admin-token") as admin:
        silent = await app_managers(api, receiver)
        silent.answer = lambda payload: None  # the replies are sent only after the restart
        before = await hosts(admin)
        session = await start(admin, hosts=["compute-1", "compute-3"])
        on_hosts = {i["project"] for i in (await admin.get("/v1/instances")).json()["instances"]
                    if i["host"] in ("compute-1", "compute-3")}  # fmt: skip
        await receiver.wait_for(len(on_hosts))  # each project with instances there asked MAINTENANCE
        asked = list(silent.messages)
        stood = (await admin.get(f"/v1/maintenance/{session}")).json()
    async with restart(settings) as api, api.client("admin-token") as admin:
        apps = Apps(receiver, {"vnf-a": "vnf-a-token", "vnf-b": "vnf-b-token"}, api.url)
        receiver.on_receive = apps.on_receive
        for payload in asked:
            await apps._reply(payload, ack_all(payload))
        done = await finished(admin, session)
        after = await hosts(admin)
        placed = await placement(admin)

    assert stood["state"] == "MAINTENANCE"
    assert sorted(m["project_id"] for m in asked) == sorted(on_hosts)
    assert {m["state"] for m in asked} == {"MAINTENANCE"}
    assert done["state"] == "MAINTENANCE_DONE", done.get("reason")
    assert "MAINTENANCE" not in [m["state"] for m in apps.messages], "the cut-off ask was not sent again"
    assert "MAINTENANCE_COMPLETE" in [m["state"] for m in apps.messages]
    assert {n: (h["status"], h["in_maintenance"]) for n, h in after.items()} == {
        n: (h["status"], h["in_maintenance"]) for n, h in before.items()
    }, "every host back in service"
    assert len(placed) == 8, "no instance lost"


async def test_an_instances_lead_time_delays_its_migration_after_the_message(
    admin: httpx.AsyncClient, vnf_a: httpx.AsyncClient, apps: Apps
) -> None:
    assert (await vnf_a.put("/v1/instance/vnf-a-app-act", json={"lead_time": 0.5})).status_code == 200
    session = await start(admin, hosts=SESSION_HOSTS)
    assert (await finished(admin, session))["state"] == "MAINTENANCE_DONE"
    [asked] = [
        m for m in apps.messages if m["state"] in ("PREPARE_MAINTENANCE", "PLANNED_MAINTENANCE")
        and "vnf-a-app-act" in m["instance_ids"]
    ]  # fmt: skip
    sent_at = datetime.fromisoformat(asked["reply_at"]) - timedelta(seconds=30)  # reply_at = sent + the window
    actions_at = datetime.fromisoformat(asked["actions_at"])
    assert actions_at - sent_at >= timedelta(seconds=0.49)
    done = [
        e for e in apps.receiver.delivered("/vnf-a")
        if "INSTANCE_ACTION_DONE" in str(e["body"]) and "vnf-a-app-act" in str(e["body"])
    ]  # fmt: skip
    assert done
    assert done[0]["received_at"] >= actions_at.timestamp()


@pytest.mark.postgres
async def test_a_session_on_postgresql_is_done_and_kept_across_a_restart(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    async with fresh_postgres_database() as url:
        on_postgres = settings.model_copy(update={"store": settings.store.model_copy(update={"url": url})})
        async with restart(on_postgres) as api, api.client("admin-token") as admin:
            await app_managers(api, receiver)
            before = await placement(admin)
            session = await start(admin, hosts=SESSION_HOSTS, actions=[{"plugin": "upgrade", "duration_s": 0.01}])
            done = await finished(admin, session)
            assert done["state"] == "MAINTENANCE_DONE", done
            assert set(await placement(admin)) == set(before)
            detail = (await admin.get(f"/v1/maintenance/{session}/detail")).json()
        async with restart(on_postgres) as api, api.client("admin-token") as admin:
            kept = (await admin.get(f"/v1/maintenance/{session}")).json()
            assert kept == done
            assert (await admin.get(f"/v1/maintenance/{session}/detail")).json() == detail


EMPTYING = ("PREPARE_MAINTENANCE", "PLANNED_MAINTENANCE")


async def asked_to_empty(apps: Apps, within_s: float = 10.0) -> list[dict[str, Any]]:
    """The messages asking what to do with the instances of a host being emptied, once there is one."""
    async with asyncio.timeout(within_s):
        while True:
            found = [m for m in apps.messages if m.get("state") in EMPTYING]
            if found:
                return found
            await asyncio.sleep(0.02)


async def test_a_session_stopped_while_a_host_is_emptied_resumes_there_and_moves_its_instances(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    """Stopped while a project had to say what to do with its instances on the host being emptied: the next start
    waits for that reply (not asked again), moves the instances as the project chose, maintains the host."""

    def hold_emptying(payload: dict[str, Any]) -> dict[str, Any] | None:
        return None if payload["state"] in EMPTYING else ack_all(payload)

    async with restart(settings) as api, api.client("admin-token") as admin:
        first = await app_managers(api, receiver)
        first.answer = hold_emptying
        before = await placement(admin)
        session = await start(admin, hosts=["compute-1", "compute-3"])
        held = await asked_to_empty(first)
        stood = (await admin.get(f"/v1/maintenance/{session}")).json()
    async with restart(settings) as api, api.client("admin-token") as admin:
        apps = Apps(receiver, {"vnf-a": "vnf-a-token", "vnf-b": "vnf-b-token"}, api.url)
        receiver.on_receive = apps.on_receive
        for payload in held:
            await apps._reply(payload, ack_all(payload))
        done = await finished(admin, session)
        placed = await placement(admin)

    assert stood["state"] in ("PREPARE_MAINTENANCE", "PLANNED_MAINTENANCE")
    assert done["state"] == "MAINTENANCE_DONE", done.get("reason")
    assert {(m["state"], tuple(m["instance_ids"])) for m in apps.messages} & {
        (m["state"], tuple(m["instance_ids"])) for m in held
    } == set(), "the cut-off ask was not sent again"
    moved = [i for m in held for i in m["instance_ids"]]
    assert moved
    assert all(placed[i] != before[i] for i in moved), "moved as the project answered after the restart"
    assert done["migrations"] >= len(moved)
