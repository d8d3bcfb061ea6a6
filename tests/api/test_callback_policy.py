"""Callbacks a tenant may not aim Vigil at (finding 1 of the security issue).

Seen before: a tenant token could subscribe callbacks on loopback in every
spelling, link-local metadata addresses, URLs of 100 KB and URLs with
credentials (forwarded as Basic auth and shown back in plain text); Vigil
connected at once (the warm-up GET), the SOL 003 callback test told whether
a port was open, and nothing limited how many subscriptions a project had.
Now the callback policy refuses every address that is not globally routable
unless the operator allows its network, where the connection is made as well
as when the subscription is made, with a 422 naming the rule; a refused
callback is never contacted (a listener on loopback counts connections);
credentials go in SOL 003's ``authentication``, never shown back; quotas hold.
"""

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qs

import pytest
from conftest import Api
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from support import Receiver

from vigil.delivery.http import HttpSender
from vigil.domain.callbacks import CallbackPolicy
from vigil.domain.retry import PermanentError
from vigil.serving import BackgroundServer
from vigil.settings import Settings


class Listener:
    """A TCP listener on loopback that counts the connections made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def __aenter__(self) -> "Listener":
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def with_notifier(settings: Settings, **notifier: Any) -> Settings:
    return settings.model_copy(update={"notifier": settings.notifier.model_copy(update=notifier)})


@pytest.fixture
async def strict(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]]
) -> AsyncIterator[Api]:
    """A server with the default callback policy, but for one private network it allows (not loopback)."""
    async with restart(with_notifier(settings, allowed_callback_networks=["10.99.0.0/16"])) as api:
        yield api


def forbidden(port: int) -> list[tuple[str, str]]:
    """(callback, the rule the 422 must name)."""
    return [
        (f"http://127.0.0.1:{port}/hook", "loopback"),
        (f"http://localhost:{port}/hook", "loopback"),
        (f"http://127.0.0.2:{port}/hook", "loopback"),
        (f"http://[::1]:{port}/hook", "loopback"),
        (f"http://0.0.0.0:{port}/hook", "unspecified"),
        (f"http://2130706433:{port}/hook", "loopback"),
        (f"http://0x7f.0.0.1:{port}/hook", "loopback"),
        (f"http://127.1:{port}/hook", "loopback"),
        (f"http://[::ffff:127.0.0.1]:{port}/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://100.64.0.1/hook", "not globally routable"),
        ("http://[fc00::1]/hook", "unique-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        (f"http://user:secret@127.0.0.1:{port}/hook", "credentials"),
        ("http://user:secret@example.com/hook", "credentials"),
        ("ftp://example.com/hook", "http or https"),
        ("http://example.com/" + "a" * 3000, "2048"),
    ]


async def test_every_forbidden_callback_is_refused_naming_the_rule_and_never_contacted(strict: Api) -> None:
    async with Listener() as listener, strict.client("vnf-a-token") as member, strict.client("admin-token") as admin:
        for url, rule in forbidden(listener.port):
            for payload_format in ("aodh", "sol003"):
                body = {"callbacks": [url], "format": payload_format}
                response = await member.post("/v1/subscriptions", json=body)
                assert response.status_code == 422, (url, response.text)
                assert rule in response.json()["error"]["message"], (url, response.text)
        response = await admin.post("/v1/subscriptions", json={"callbacks": [f"http://127.0.0.1:{listener.port}/a"]})
        assert response.status_code == 422  # admins too: the policy is the operator's, not a role's
        await asyncio.sleep(0.2)
        assert listener.connections == 0
        assert (await member.get("/v1/subscriptions")).json()["subscriptions"] == []
        allowed = await member.post("/v1/subscriptions", json={"callbacks": ["http://10.99.0.7:9/hook"]})
        assert allowed.status_code == 201, allowed.text  # the network the operator allowed


async def test_a_host_no_resolver_can_encode_is_refused_not_a_server_error(api: Api) -> None:
    """Found by fuzzing: a host label over 63 characters made getaddrinfo raise UnicodeError (IDNA), a 500.
    Both a literal-looking one (all digits) and a name are refused before any lookup is sent."""
    async with api.client("vnf-a-token") as member:
        for host in ("0" * 64, "a" * 64 + ".example.com", "0" * 300):
            response = await member.post("/v1/subscriptions", json={"callbacks": [f"http://{host}/hook"]})
            assert response.status_code == 422, (host, response.text)
            assert "callback refused" in response.json()["error"]["message"], response.text


async def test_the_policy_holds_where_the_connection_is_made() -> None:
    """A name checked once and resolving elsewhere later, or an address literal in any spelling:
    the sender refuses it for good on every connection, and connects to nothing."""
    async with Listener() as listener, HttpSender(policy=CallbackPolicy()) as sender:
        for url in (f"http://localhost:{listener.port}/x", f"http://2130706433:{listener.port}/x"):
            with pytest.raises(PermanentError, match="refused"):
                await sender.send(url, b"{}")
            with pytest.raises(PermanentError, match="refused"):
                await sender.warm(url)
        assert listener.connections == 0
    allowing = CallbackPolicy.allowing(["127.0.0.0/8"])
    async with Listener() as listener, HttpSender(policy=allowing) as sender:
        with pytest.raises(Exception):  # noqa: B017, PT011 (it connects, and the listener hangs up)
            await sender.send(f"http://localhost:{listener.port}/x", b"{}", timeout_s=1)
        assert listener.connections >= 1  # the same name, allowed: contacted


async def test_the_callback_test_tells_nothing_about_the_target(api: Api, receiver: Receiver) -> None:
    async with Listener() as listener, api.client("vnf-a-token") as member:
        closed = f"http://127.0.0.1:{listener.port + 1}/sol"  # nothing listens there
        hanging_up = f"http://127.0.0.1:{listener.port}/sol"
        receiver.statuses = []
        answers_200 = f"{receiver.url}/sol"
        messages = []
        for url in (closed, hanging_up):
            response = await member.post("/v1/subscriptions", json={"callbacks": [url], "format": "sol003"})
            assert response.status_code == 422
            messages.append(response.json()["error"]["message"].replace(url, "URL"))
        assert messages[0] == messages[1]
        assert "Errno" not in messages[0]
        assert "refused" not in messages[0].lower()
        ok = await member.post("/v1/subscriptions", json={"callbacks": [answers_200], "format": "sol003"})
        assert ok.status_code == 201  # the test receiver answers a GET with 204


async def test_basic_credentials_are_sent_and_never_shown_back(api: Api, receiver: Receiver) -> None:
    async with (
        api.client("vnf-a-token") as member,
        api.client("monitor-token") as monitor,
        api.client("admin-token") as admin,
    ):
        body = {
            "callbacks": [f"{receiver.url}/basic"],
            "format": "sol003",
            "authentication": {"authType": ["BASIC"], "paramsBasic": {"userName": "vnfm", "password": "s3cret!"}},
        }
        response = await member.post("/v1/subscriptions", json=body)
        assert response.status_code == 201, response.text
        created = response.json()["subscription"]
        assert created["authentication"] == {"authType": ["BASIC"], "userName": "vnfm", "tokenEndpoint": None}
        report = {
            "time": "2026-12-07T00:00:00Z",
            "type": "compute.host.down",
            "details": {"hostname": "compute-1", "status": "down", "monitor": "m", "monitor_event_id": "b1"},
        }
        assert (await monitor.post("/v1/event", json=report)).status_code == 200
        notes = await receiver.wait_for(1, "/basic")
        expected = "Basic " + base64.b64encode(b"vnfm:s3cret!").decode()
        assert {note["headers"]["authorization"] for note in notes} == {expected}
        shown = [
            (await member.get(f"/v1/subscriptions/{created['id']}")).text,
            (await member.get("/v1/subscriptions")).text,
            (await admin.get("/v1/deliveries")).text,
        ]
        assert all("s3cret" not in text for text in shown)


async def test_oauth2_client_credentials_get_a_token_once_and_send_it(api: Api, receiver: Receiver) -> None:
    issued: list[str] = []
    tokens = FastAPI()

    @tokens.post("/token")
    async def token(request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(b"vigil-client:client-secret").decode()
        grant = parse_qs((await request.body()).decode()).get("grant_type")
        if grant != ["client_credentials"] or request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        issued.append(f"token-{len(issued) + 1}")
        return JSONResponse({"access_token": issued[-1], "token_type": "Bearer", "expires_in": 3600})

    async with (
        BackgroundServer(tokens) as endpoint,
        api.client("vnf-a-token") as member,
        api.client("monitor-token") as monitor,
    ):
        body = {
            "callbacks": [f"{receiver.url}/oauth"],
            "authentication": {
                "authType": ["OAUTH2_CLIENT_CREDENTIALS"],
                "paramsOauth2ClientCredentials": {
                    "clientId": "vigil-client",
                    "clientPassword": "client-secret",
                    "tokenEndpoint": f"{endpoint.url}/token",
                },
            },
        }
        response = await member.post("/v1/subscriptions", json=body)
        assert response.status_code == 201, response.text
        assert "client-secret" not in response.text
        for n, host in enumerate(("compute-1", "compute-2")):
            details = {"hostname": host, "status": "down", "monitor": "m", "monitor_event_id": f"o{n}"}
            event = {"time": "2026-12-07T00:00:00Z", "type": "compute.host.down", "details": details}
            assert (await monitor.post("/v1/event", json=event)).status_code == 200
        notes = await receiver.wait_for(2, "/oauth")
    assert {n["headers"]["authorization"] for n in notes} == {"Bearer token-1"}
    assert issued == ["token-1"]  # fetched once, kept until it expires


async def test_quotas_per_project_and_per_subscription(
    settings: Settings, restart: Callable[[Settings], AbstractAsyncContextManager[Api]], receiver: Receiver
) -> None:
    tight = with_notifier(settings, max_subscriptions_per_project=2, max_callbacks_per_subscription=2)
    async with restart(tight) as api, api.client("vnf-a-token") as member, api.client("vnf-b-token") as other:
        many = {"callbacks": [f"{receiver.url}/{n}" for n in range(3)]}
        response = await member.post("/v1/subscriptions", json=many)
        assert response.status_code == 422
        assert "max_callbacks_per_subscription" in response.json()["error"]["message"]
        for n in range(2):
            assert (
                await member.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/{n}"]})
            ).status_code == 201
        response = await member.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/x"]})
        assert response.status_code == 409
        assert "max_subscriptions_per_project" in response.json()["error"]["message"]
        assert (await other.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/b"]})).status_code == 201
        started = time.monotonic()
        [first] = (await member.get("/v1/subscriptions")).json()["subscriptions"][:1]
        assert (await member.delete(f"/v1/subscriptions/{first['id']}")).status_code == 204
        assert (await member.post("/v1/subscriptions", json={"callbacks": [f"{receiver.url}/y"]})).status_code == 201
        assert time.monotonic() - started < 30
