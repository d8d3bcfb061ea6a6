"""Keystone, Nova and Neutron as small loopback HTTP servers, for the OpenStack driver's tests without OpenStack.

They answer only what the driver asks at start (a token, the inventory) and
what the fault pusher sends (``forced_down``, ``os-resetState``, a port's
``data_plane_status``), and keep what was pushed, so a test reads Nova's and
Neutron's state as a Doctor consumer would. Nova runs on a server of its
own, so a test can make it unreachable the two ways a real one is:
:meth:`OpenStackStandIn.stop_nova` (connection refused) and ``nova_status``
(every call answered with it, as a proxy in front of a dead Nova answers
503). Keystone and Neutron stay up on the other server. With ``hold`` set,
Nova keeps the fault actions (forced_down, os-resetState) unanswered until
it is set, counting how many it holds at once, as a busy Nova queues them.
"""

import asyncio
import contextlib
import inspect
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vigil.api.auth import Principal, Role, TokenRegistry
from vigil.serving import BackgroundServer
from vigil.settings import Settings
from vigil.wiring import create_server_app

PROJECT = "p-standin"
TOKENS = {
    "admin": Principal("admin", Role.ADMIN),
    "monitor": Principal("monitoring", Role.MONITOR),
    "tenant": Principal(PROJECT, Role.MEMBER),
}


@contextlib.asynccontextmanager
async def vigil(settings: Settings) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """A Vigil in this process, in front of the stand-in; the callable gives a client holding one of ``TOKENS``."""
    async with BackgroundServer(create_server_app(settings, TokenRegistry(TOKENS))) as server:

        def client(token: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=server.url, headers={"X-Auth-Token": token}, timeout=10)

        yield client


def report(host: str, ident: str, status: str = "down") -> dict[str, Any]:
    """A monitor's report that ``host`` is down (or up)."""
    details = {"hostname": host, "status": status, "monitor": "m", "monitor_event_id": ident}
    return {"time": datetime.now(UTC).isoformat(), "type": f"compute.host.{status}", "details": details}


async def until(check: Callable[[], Any], what: str, within_s: float = 30.0) -> Any:
    """Poll ``check`` (a function or a coroutine function) until it gives something true, and return that."""
    deadline = time.monotonic() + within_s
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@dataclass
class OpenStackStandIn:
    """Hosts ``compute-1..N``; servers and their ports added with :meth:`add_server` before Vigil starts."""

    computes: int = 2
    nova_status: int | None = None  # set: every Nova call is answered with it
    forced_down: dict[str, bool] = field(default_factory=dict)  # host -> as pushed
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"host", "status"}
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"device_id", "data_plane_status"}
    refused: int = 0  # Nova calls answered with nova_status
    hold: asyncio.Event | None = None  # set: Nova's fault actions wait for it before they are answered
    in_flight: int = 0  # fault actions Nova holds now
    most_in_flight: int = 0
    malformed: bool = False  # set: os-services answers a body Nova does not document ({})
    token_life_s: float | None = None  # set: Keystone's tokens expire that long after they are issued
    tokens_issued: int = 0
    refuse_up: bool = False  # set: forcing a host up is refused (400), as while evacuation records remain
    before_2_53: bool = False  # set: a Nova without 2.53, which answers it 406 and takes the 2.11 force-down
    registered: dict[str, int] = field(default_factory=dict)  # host -> times its service was registered again
    forms: list[str] = field(default_factory=list)  # the form of each forced_down Nova took: "2.53" or "2.11"
    inventory_reads: int = 0  # GET /servers/detail answered: each reconciliation reads it once
    _nova: BackgroundServer | None = None
    _rest: BackgroundServer | None = None
    _nova_port: int = 0

    def __post_init__(self) -> None:
        self.forced_down = {f"compute-{i}": False for i in range(1, self.computes + 1)}

    def add_server(self, ident: str, host: str) -> None:
        self.servers[ident] = {"host": host, "status": "ACTIVE"}
        self.ports[f"{ident}-port"] = {"device_id": ident, "data_plane_status": None}

    # -- running ---------------------------------------------------------------

    async def start(self) -> None:
        self._rest = BackgroundServer(self._rest_app(), lifespan="off", name="standin.keystone-neutron")
        await self._rest.start()
        await self.start_nova()

    async def start_nova(self) -> None:
        """Start Nova (again, on the port it had)."""
        self._nova = BackgroundServer(self._nova_app(), port=self._nova_port, lifespan="off", name="standin.nova")
        await self._nova.start()
        self._nova_port = self._nova.port

    async def stop_nova(self) -> None:
        """Nova's API process is gone: its port refuses connections."""
        if self._nova is not None:
            await self._nova.stop()
            self._nova = None

    async def stop(self) -> None:
        await self.stop_nova()
        if self._rest is not None:
            await self._rest.stop()

    @property
    def rest_url(self) -> str:
        assert self._rest is not None
        return self._rest.url

    @property
    def nova_url(self) -> str:
        return f"http://127.0.0.1:{self._nova_port}/v2.1"

    def vim_settings(self) -> dict[str, Any]:
        """Settings ``vim`` for a Vigil in front of this stand-in."""
        return {
            "driver": "openstack",
            "openstack": {
                "auth_url": f"{self.rest_url}/identity/v3",
                "username": "admin",
                "password": "secret",
                "project_name": "admin",
                "endpoint_overrides": {
                    "compute": self.nova_url,
                    "network": f"{self.rest_url}/network",
                    "identity": f"{self.rest_url}/identity/v3",
                },
            },
        }

    # -- what Nova and Neutron show -----------------------------------------------

    def shows_fault(self, host: str) -> bool:
        """Nova has the host forced down and its servers ERROR, and Neutron their ports DOWN."""
        on_host = [i for i, s in self.servers.items() if s["host"] == host]
        return (
            self.forced_down[host]
            and all(self.servers[i]["status"] == "ERROR" for i in on_host)
            and all(p["data_plane_status"] == "DOWN" for p in self.ports.values() if p["device_id"] in on_host)
        )

    def _service_id(self, host: str) -> str:
        """A service's UUID; a new one each time it is registered again (``register_again``)."""
        again = self.registered.get(host, 0)
        return f"svc-{host}" + (f"-{again}" if again else "")

    def register_again(self, host: str) -> None:
        """The host's compute service deleted and registered again (a reinstall): it has a new UUID."""
        self.registered[host] = self.registered.get(host, 0) + 1

    def _set_forced_down(self, host: str, down: bool, form: str) -> Response:
        if self.refuse_up and not down:
            message = f"Evacuation records remain on {host}: it cannot be forced up yet"
            return JSONResponse({"badRequest": {"code": 400, "message": message}}, status_code=400)
        self.forced_down[host] = down
        self.forms.append(form)
        return JSONResponse({"service": {"host": host, "binary": "nova-compute", "forced_down": down}})

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1

    # -- the apps --------------------------------------------------------------------

    def _rest_app(self) -> FastAPI:
        app = FastAPI()
        tokens = itertools.count(1)

        @app.post("/identity/v3/auth/tokens")
        async def token() -> Response:
            self.tokens_issued += 1
            expires = "2999-01-01T00:00:00.000000Z"
            if self.token_life_s is not None:
                expires = (datetime.now(UTC) + timedelta(seconds=self.token_life_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = {
                "token": {
                    "methods": ["password"],
                    "expires_at": expires,
                    "issued_at": "2026-01-01T00:00:00.000000Z",
                    "user": {"id": "u-admin", "name": "admin", "domain": {"id": "default", "name": "Default"}},
                    "project": {"id": PROJECT, "name": "admin", "domain": {"id": "default", "name": "Default"}},
                    "roles": [{"id": "r-admin", "name": "admin"}],
                    "catalog": [],
                }
            }
            return JSONResponse(body, status_code=201, headers={"X-Subject-Token": f"token-{next(tokens)}"})

        @app.get("/identity/v3/projects")
        async def projects() -> dict[str, Any]:
            return {"projects": [{"id": PROJECT, "name": "standin"}]}

        @app.get("/network/v2.0/ports")
        async def ports() -> dict[str, Any]:
            listed = []
            for ident, p in self.ports.items():
                server = self.servers[p["device_id"]]
                listed.append(
                    {
                        "id": ident,
                        "device_id": p["device_id"],
                        "device_owner": "compute:nova",
                        "project_id": PROJECT,
                        "binding:host_id": server["host"],
                        "network_id": "net-1",
                        "data_plane_status": p["data_plane_status"],
                    }
                )
            return {"ports": listed}

        @app.put("/network/v2.0/ports/{ident}")
        async def update_port(ident: str, request: Request) -> Response:
            if ident not in self.ports:
                return JSONResponse({"NeutronError": {"message": "no such port"}}, status_code=404)
            self.ports[ident]["data_plane_status"] = (await request.json())["port"]["data_plane_status"]
            return JSONResponse({"port": {"id": ident, **self.ports[ident]}})

        return app

    def _nova_app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def away(request: Request, call_next: Any) -> Response:
            if self.nova_status is not None:
                self.refused += 1
                return JSONResponse({"message": "Nova is away"}, status_code=self.nova_status)
            response: Response = await call_next(request)
            return response

        @app.get("/v2.1/os-services")
        async def services(host: str | None = None) -> dict[str, Any]:
            if self.malformed:
                return {}
            return {
                "services": [
                    {
                        "id": self._service_id(h),
                        "host": h,
                        "binary": "nova-compute",
                        "zone": "nova",
                        "status": "enabled",
                        "state": "down" if down else "up",
                        "forced_down": down,
                        "disabled_reason": None,
                    }
                    for h, down in self.forced_down.items()
                    if host is None or h == host
                ]
            }

        @app.put("/v2.1/os-services/force-down")
        async def force_down(request: Request) -> Response:
            body = await request.json()
            if request.headers.get("OpenStack-API-Version") != "compute 2.11" or body["host"] not in self.forced_down:
                return JSONResponse({"badRequest": {"code": 400, "message": "bad force-down"}}, status_code=400)
            return self._set_forced_down(body["host"], bool(body["forced_down"]), "2.11")

        @app.put("/v2.1/os-services/{ident}")
        async def update_service(ident: str, request: Request) -> Response:
            if self.before_2_53:
                message = "Version 2.53 is not supported by the API. Minimum is 2.1 and maximum is 2.42."
                return JSONResponse({"computeFault": {"code": 406, "message": message}}, status_code=406)
            with self._held():
                if self.hold is not None:
                    await self.hold.wait()
            host = next((h for h in self.forced_down if self._service_id(h) == ident), None)
            if host is None:
                return JSONResponse({"itemNotFound": {"message": "no such service"}}, status_code=404)
            return self._set_forced_down(host, bool((await request.json())["forced_down"]), "2.53")

        @app.get("/v2.1/os-hypervisors/detail")
        async def hypervisors() -> dict[str, Any]:
            return {"hypervisors": [{"vcpus": 8, "service": {"host": h}} for h in self.forced_down]}

        @app.get("/v2.1/servers/detail")
        async def servers() -> dict[str, Any]:
            self.inventory_reads += 1
            return {
                "servers": [
                    {
                        "id": ident,
                        "name": ident,
                        "tenant_id": PROJECT,
                        "OS-EXT-SRV-ATTR:host": s["host"],
                        "status": s["status"],
                        "flavor": {"vcpus": 1},
                        "metadata": {},
                    }
                    for ident, s in self.servers.items()
                ]
            }

        @app.post("/v2.1/servers/{ident}/action")
        async def action(ident: str, request: Request) -> Response:
            with self._held():
                if self.hold is not None:
                    await self.hold.wait()
            if ident not in self.servers:
                return JSONResponse({"itemNotFound": {"message": "no such server"}}, status_code=404)
            self.servers[ident]["status"] = (await request.json())["os-resetState"]["state"].upper()
            return Response(status_code=202)

        @app.get("/v2.1/os-server-groups")
        async def groups() -> dict[str, Any]:
            return {"server_groups": []}

        return app
