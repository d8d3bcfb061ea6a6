"""``vigil demo fault --openstack``: Doctor's fault test on a real OpenStack, with Vigil as the inspector.

On the stack of ``vigil testbed openstack`` (or any cloud whose credentials
file has the same shape): ``instances`` servers are booted through Nova on
compute-1, a Vigil with ``vim.driver: openstack`` starts in this process
and reads them from Nova, a consumer subscribes for the project's alarms,
and a ``compute.host.down`` for compute-1 is reported. Two numbers come out:

* ``notification_ms``: detection (T01) to the consumer's receipt (T09), the
  time Doctor bounds by one second;
* ``nova_consistent_ms``: T01 to the moment Nova's API shows every affected
  server ERROR and the host's ``host_status`` DOWN, which is what Doctor's
  consumer and Tacker read after a notification. Vigil pushes those after
  the notification has left, so the consumer never waits for Nova. Nova
  sets each state before it answers, so this is when Nova answered Vigil's
  last call (``GET /v1/vim``'s ``landed_at``), as ``bench.openstack`` times
  a bare client's calls; Nova's API is then read to check it shows the
  fault, untimed. Polling Nova from T01 instead measured the poller as much
  as Vigil: a read of 50 servers took 443 ms here, on one of nova-api's few
  threads, while the resets waited for it.

The host fails once Vigil follows Nova in its steady state
(:func:`wait_steady`): connected to the notifications, past the backlog
queued before it started (the demo's own boots among it), and quiet. A
Vigil that runs for days is measured that way; the embedded demo's is too.
Injected during the start-up's catch-up, the report waited behind a few
hundred queued notifications: 50 servers' notification took 10.8-14.6 ms
then, against 7.2-8.7 ms once steady (seen on this machine).

Afterwards the servers are deleted and compute-1 is forced up again.
"""

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from vigil.api.auth import Principal, Role, TokenRegistry, new_token
from vigil.domain.callbacks import LOOPBACK
from vigil.settings import load_settings
from vigil.vim.openstack.session import OpenStackAuth, OpenStackSession
from vigil.wiring import BackgroundServer, create_server_app

FAILED_HOST = "compute-1"
QUIET_S = 0.3  # no notification for this long: the catch-up is over
SERVER_MICROVERSION = "2.74"  # a server may name its host
_T = TypeVar("_T")


@dataclass(slots=True)
class OpenStackDemoResult:
    instances: int
    fault: str | None = None
    notification_ms: float | None = None
    nova_consistent_ms: float | None = None
    checkpoints_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "notification_ms": self.notification_ms,
            "nova_consistent_ms": self.nova_consistent_ms,
            "checkpoints_ms": self.checkpoints_ms,
            "fault": self.fault,
            "error": self.error,
        }


def auth_from(credentials: dict[str, Any]) -> OpenStackAuth:
    """The ``credentials.json`` that ``vigil testbed openstack up`` writes."""
    return OpenStackAuth(
        auth_url=credentials["auth_url"],
        username=credentials["username"],
        password=credentials["password"],
        project_name=credentials["project_name"],
        user_domain_name=credentials.get("user_domain_name", "Default"),
        project_domain_name=credentials.get("project_domain_name", "Default"),
        region_name=credentials.get("region_name"),
    )


def vim_settings(credentials: dict[str, Any]) -> dict[str, Any]:
    return {
        "driver": "openstack",
        "openstack": {
            "auth_url": credentials["auth_url"],
            "username": credentials["username"],
            "password": credentials["password"],
            "project_name": credentials["project_name"],
            "region_name": credentials.get("region_name"),
            **(
                {"notifications_url": credentials["notifications"]["amqp_url"]}
                if "notifications" in credentials
                else {}
            ),
        },
    }


async def boot_servers(nova: OpenStackSession, count: int, host: str, tag: str) -> list[str]:
    """``count`` servers on ``host``, ACTIVE (the image the catalog's image service lists first, a tiny flavor)."""
    image = (await nova.get("image", "/v2/images"))["images"][0]["id"]
    flavor_body = {"flavor": {"name": f"{tag}-flavor", "ram": 64, "vcpus": 1, "disk": 0}}
    flavor = (await nova.request("compute", "POST", "/flavors", json=flavor_body)).json()["flavor"]["id"]
    ids: list[str] = []
    for n in range(count):
        role = "ACT" if n == 0 else "worker"
        body = {
            "server": {
                "name": f"{tag}-{n:03d}",
                "imageRef": image,
                "flavorRef": flavor,
                "networks": "none",
                "host": host,
                "metadata": {"role": role},
            }
        }
        try:
            made = await nova.request("compute", "POST", "/servers", microversion=SERVER_MICROVERSION, json=body)
        except BaseException:
            await clean_up(nova, ids, host, tag)
            raise
        ids.append(made.json()["server"]["id"])
    deadline = time.monotonic() + 60 + 2 * count
    try:
        while True:
            states = [(await nova.get("compute", f"/servers/{i}"))["server"]["status"] for i in ids]
            if all(s == "ACTIVE" for s in states):
                return ids
            if "ERROR" in states or time.monotonic() > deadline:
                raise RuntimeError(f"servers did not become ACTIVE: {states}")
            await asyncio.sleep(0.3)
    except BaseException:  # the caller never learns their ids: delete them here, not leave them on the stack
        await clean_up(nova, ids, host, tag)
        raise


async def nova_consistent(nova: OpenStackSession, ids: list[str]) -> bool:
    """Nova's API shows every server ERROR and its host DOWN."""
    found = await nova.get("compute", "/servers/detail", microversion="2.16", all_tenants=1)
    shown = {s["id"]: s for s in found["servers"]}
    return all(shown.get(i, {}).get("status") == "ERROR" and shown[i].get("host_status") == "DOWN" for i in ids)


async def clean_up(nova: OpenStackSession, ids: list[str], host: str, tag: str) -> None:
    """Delete the servers and their flavor, and force the host up again."""
    services = await nova.get("compute", "/os-services", microversion="2.53", binary="nova-compute", host=host)
    for service in services["services"]:
        with contextlib.suppress(Exception):
            await nova.request(
                "compute", "PUT", f"/os-services/{service['id']}", microversion="2.53", json={"forced_down": False}
            )
    for ident in ids:
        with contextlib.suppress(Exception):
            await nova.request("compute", "DELETE", f"/servers/{ident}")
    flavors = (await nova.get("compute", "/flavors"))["flavors"]
    for flavor in flavors:
        if flavor["name"] == f"{tag}-flavor":
            with contextlib.suppress(Exception):
                await nova.request("compute", "DELETE", f"/flavors/{flavor['id']}")


def receiver() -> FastAPI:
    """The consumer: takes a notification and answers when it got it (Vigil's T09)."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"], status_code=200)
    async def hook(path: str) -> dict[str, float]:
        return {"received_at": time.time()}

    return app


async def run_openstack_demo(
    instances: int, credentials: dict[str, Any], *, timeout_s: float = 60.0
) -> OpenStackDemoResult:
    result = OpenStackDemoResult(instances)
    tag = f"vigil-demo-{time.time_ns()}"
    async with OpenStackSession(auth_from(credentials)) as nova:
        ids: list[str] = []
        try:
            ids = await boot_servers(nova, instances, FAILED_HOST, tag)
            project = (await nova.get("compute", f"/servers/{ids[0]}"))["server"]["tenant_id"]
            with tempfile.TemporaryDirectory(prefix="vigil-demo-os-") as scratch:
                await _measure(result, credentials, Path(scratch), project, nova, ids, timeout_s)
        except Exception as exc:  # the demo reports what failed instead of a traceback
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            await clean_up(nova, ids, FAILED_HOST, tag)
    return result


async def _vim_until(
    client: httpx.AsyncClient, admin: str, deadline: float, done: Callable[[dict[str, Any]], _T | None], what: str
) -> _T:
    """Ask ``GET /v1/vim`` every 50 ms until ``done`` makes something of its answer. Not more often: the times
    measured are Vigil's to record (``landed_at``), and asking only loads the loop that pushes."""
    while True:
        shown = (await client.get("/v1/vim", headers={"X-Auth-Token": admin})).json()
        if (found := done(shown)) is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} in time: {shown}")
        await asyncio.sleep(0.05)


def _steady(shown: dict[str, Any]) -> int | None:
    """How many fault actions Vigil has pushed, once its map follows Nova steadily: the consumer connected,
    every message queued before it began received, none for ``QUIET_S``, and no fault action on its way."""
    feed = shown.get("notifications") or {}
    last = feed.get("last_received_at")
    quiet = last is None or time.time() - datetime.fromisoformat(last).timestamp() >= QUIET_S
    caught_up = feed.get("connected") and feed.get("received", 0) >= (feed.get("backlog_at_start") or 0)
    return int(shown["pushes"]["pushed"]) if caught_up and quiet and not shown["pushes"]["pending"] else None


async def wait_steady(client: httpx.AsyncClient, admin: str, timeout_s: float) -> int:
    """Wait until Vigil's map follows Nova steadily (:func:`_steady`); returns how many fault actions Vigil has
    pushed so far."""
    deadline = time.monotonic() + timeout_s
    return await _vim_until(client, admin, deadline, _steady, "Vigil did not settle on Nova's notifications")


async def wait_pushed(client: httpx.AsyncClient, admin: str, before: int, deadline: float) -> datetime:
    """Wait until Nova has answered the fault's pushes (more pushed than ``before``, none waiting for Nova; a
    fault's actions begin together, from the bus batch that holds them), and return when Nova answered the last
    (Neutron's port updates are not Nova's API)."""

    def answered(shown: dict[str, Any]) -> datetime | None:
        pushes = shown["pushes"]
        if pushes["pushed"] > before and not pushes["waiting"].get("compute"):
            return datetime.fromisoformat(pushes["landed_at"]["compute"])
        return None

    return await _vim_until(client, admin, deadline, answered, "Nova did not answer Vigil's fault actions")


async def _measure(
    result: OpenStackDemoResult,
    credentials: dict[str, Any],
    data_dir: Path,
    project: str,
    nova: OpenStackSession,
    ids: list[str],
    timeout_s: float,
) -> None:
    settings = load_settings(
        None,
        data_dir=data_dir,
        monitor={"listen": "off"},
        notifier={"allowed_callback_networks": list(LOOPBACK)},
        inspector={"hold_down_s": 0},
        vim=vim_settings(credentials),
    )
    admin, monitor, member = new_token(), new_token(), new_token()
    tokens = TokenRegistry(
        {
            admin: Principal("admin", Role.ADMIN),
            monitor: Principal("monitoring", Role.MONITOR),
            member: Principal(project, Role.MEMBER),
        }
    )
    async with (
        BackgroundServer(create_server_app(settings, tokens)) as server,
        BackgroundServer(receiver(), lifespan="off", name="vigil.demo.consumer") as consumer,
        httpx.AsyncClient(base_url=server.url, timeout=timeout_s) as client,
    ):
        subscribed = await client.post(
            "/v1/subscriptions", json={"callbacks": [f"{consumer.url}/alarms"]}, headers={"X-Auth-Token": member}
        )
        subscribed.raise_for_status()
        pushed = await wait_steady(client, admin, timeout_s)
        detected = datetime.now(UTC)  # T01: the demo's monitor sees the host go down now
        t01 = time.time()
        event = {
            "time": detected.isoformat(),
            "type": "compute.host.down",
            "details": {
                "hostname": FAILED_HOST,
                "status": "down",
                "monitor": "vigil-demo",
                "monitor_event_id": f"demo-{t01:.6f}",
            },
        }
        answered = await client.post("/v1/event", json=event, headers={"X-Auth-Token": monitor})
        answered.raise_for_status()
        result.fault = answered.json()["event"]["fault"]
        deadline = time.monotonic() + timeout_s
        nova_answered = await wait_pushed(client, admin, pushed, deadline)
        while not await nova_consistent(nova, ids):  # what Nova answered, its API shows: checked, not timed
            if time.monotonic() > deadline:
                raise TimeoutError(f"Nova did not show the fault within {timeout_s} s")
            await asyncio.sleep(0.02)
        result.nova_consistent_ms = round((nova_answered.timestamp() - t01) * 1000, 1)
        while True:
            profile = (await client.get(f"/v1/faults/{result.fault}/profile", headers={"X-Auth-Token": admin})).json()
            if "T09" in profile.get("checkpoints", {}) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        result.checkpoints_ms = profile.get("ms_after_T01", {})
        result.notification_ms = profile.get("notification_ms")
