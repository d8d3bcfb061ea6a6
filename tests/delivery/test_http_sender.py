"""The HTTP sender against real HTTP servers on loopback: the receiver's answer
decides the outcome, and connections are opened once and kept."""

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from vigil.delivery.http import HttpSender
from vigil.domain.callbacks import LOOPBACK, CallbackPolicy
from vigil.domain.retry import PermanentError, TemporaryError
from vigil.notifier.ports import Sender, SendResult

BODY = json.dumps({"alarm_id": "a-1", "current": "alarm"}).encode()


ON_THIS_MACHINE = CallbackPolicy.allowing(LOOPBACK)  # the receivers here listen on loopback


class Hooks:
    """An aiohttp web server that records each request and the TCP connection it came on."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = asyncio.Event()  # lets /slow answer, so the server can shut down at once
        self.url = ""
        app = web.Application()
        app.router.add_post("/ok", self.ok)
        app.router.add_post("/plain", self.plain)
        app.router.add_post("/json-without-time", self.json_without_time)
        app.router.add_post("/status/{code}", self.status)
        app.router.add_post("/slow", self.slow)
        app.router.add_post("/moved", self.moved)
        app.router.add_get("/{tail:.*}", self.probe)
        self.runner = web.AppRunner(app, access_log=None)

    @property
    def connections(self) -> set[Any]:
        return {r["peer"] for r in self.requests}

    async def _record(self, request: web.Request) -> float:
        received_at = time.time()
        assert request.transport is not None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": await request.read(),
                "peer": request.transport.get_extra_info("peername"),
            }
        )
        return received_at

    async def ok(self, request: web.Request) -> web.Response:
        return web.json_response({"received_at": await self._record(request)})

    async def plain(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(text="thanks")

    async def json_without_time(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"ok": True, "received_at": "yesterday"})

    async def status(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"received_at": time.time()}, status=int(request.match_info["code"]))

    async def slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.release.wait(), 5)
        return web.json_response({})

    async def moved(self, request: web.Request) -> web.Response:
        await self._record(request)
        raise web.HTTPFound("/ok")

    async def probe(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=204)

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    server = Hooks()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def sender(hooks: Hooks) -> AsyncIterator[HttpSender]:
    """Torn down before ``hooks`` (it depends on it), so the server sees its connections close."""
    http = HttpSender(policy=ON_THIS_MACHINE)
    await http.start()
    yield http
    await http.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- what the receiver answered ---------------------------------------------------


async def test_a_2xx_answer_with_received_at_gives_the_receivers_time(sender: HttpSender, hooks: Hooks) -> None:
    before = time.time()
    result = await sender.send(f"{hooks.url}/ok", BODY)
    assert isinstance(result, SendResult)
    assert result.status == 200
    assert result.received_at is not None
    assert before <= result.received_at <= time.time()
    [request] = hooks.requests
    assert (request["method"], request["body"]) == ("POST", BODY)
    assert request["headers"]["Content-Type"] == "application/json"


async def test_a_2xx_answer_without_received_at_gives_none(sender: HttpSender, hooks: Hooks) -> None:
    assert await sender.send(f"{hooks.url}/plain", BODY) == SendResult(200, None)
    assert await sender.send(f"{hooks.url}/json-without-time", BODY) == SendResult(200, None)
    assert await sender.send(f"{hooks.url}/status/204", BODY) == SendResult(204, None)


async def test_the_callers_headers_go_along(sender: HttpSender, hooks: Hooks) -> None:
    await sender.send(f"{hooks.url}/ok", BODY, headers={"X-Vigil-Notification-Id": "n-42"})
    [request] = hooks.requests
    assert request["headers"]["X-Vigil-Notification-Id"] == "n-42"
    assert request["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [500, 503, 429, 408])
async def test_5xx_429_and_408_are_temporary(sender: HttpSender, hooks: Hooks, status: int) -> None:
    with pytest.raises(TemporaryError) as caught:
        await sender.send(f"{hooks.url}/status/{status}", BODY)
    assert caught.value.status == status


@pytest.mark.parametrize("status", [404, 400, 410])
async def test_other_4xx_are_permanent(sender: HttpSender, hooks: Hooks, status: int) -> None:
    with pytest.raises(PermanentError) as caught:
        await sender.send(f"{hooks.url}/status/{status}", BODY)
    assert caught.value.status == status


async def test_a_redirect_is_not_followed_and_is_permanent(sender: HttpSender, hooks: Hooks) -> None:
    with pytest.raises(PermanentError) as caught:
        await sender.send(f"{hooks.url}/moved", BODY)
    assert caught.value.status == 302
    assert [r["path"] for r in hooks.requests] == ["/moved"]


async def test_a_receiver_slower_than_the_timeout_is_temporary(sender: HttpSender, hooks: Hooks) -> None:
    started = time.monotonic()
    with pytest.raises(TemporaryError, match=r"within 0\.2 s"):
        await sender.send(f"{hooks.url}/slow", BODY, timeout_s=0.2)
    assert time.monotonic() - started < 2
    for _ in range(200):  # on a busy machine the server may log the request after our timeout
        if hooks.requests:
            break
        await asyncio.sleep(0.01)
    assert [r["path"] for r in hooks.requests] == ["/slow"]  # not sent twice


async def test_a_refused_connection_is_temporary(sender: HttpSender) -> None:
    with pytest.raises(TemporaryError, match="cannot connect"):
        await sender.send(f"http://127.0.0.1:{free_port()}/hook", BODY)


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/hook", "http://"])
async def test_an_unusable_url_is_permanent(sender: HttpSender, url: str) -> None:
    with pytest.raises(PermanentError):
        await sender.send(url, BODY)


async def test_a_closed_sender_fails_temporarily(hooks: Hooks) -> None:
    http = HttpSender(policy=ON_THIS_MACHINE)
    await http.start()
    await http.close()
    with pytest.raises(TemporaryError, match="closed"):
        await http.send(f"{hooks.url}/ok", BODY)


# -- connections ------------------------------------------------------------------


async def test_twenty_sequential_sends_use_one_connection(sender: HttpSender, hooks: Hooks) -> None:
    for _ in range(20):
        await sender.send(f"{hooks.url}/ok", BODY)
    assert len(hooks.requests) == 20
    assert len(hooks.connections) == 1


async def test_sends_to_several_paths_of_one_receiver_share_the_connection(sender: HttpSender, hooks: Hooks) -> None:
    await sender.send(f"{hooks.url}/ok", BODY)
    await sender.send(f"{hooks.url}/plain", BODY)
    with pytest.raises(PermanentError):
        await sender.send(f"{hooks.url}/status/404", BODY)
    await sender.send(f"{hooks.url}/ok", BODY)
    assert len(hooks.connections) == 1  # an error answer does not cost the connection


async def test_warming_opens_the_connection_the_first_notification_uses(sender: HttpSender, hooks: Hooks) -> None:
    await sender.warm(f"{hooks.url}/hook")
    [probe] = hooks.requests
    assert (probe["method"], probe["path"]) == ("GET", "/hook")
    await sender.send(f"{hooks.url}/ok", BODY)
    assert len(hooks.connections) == 1


async def test_warming_an_unreachable_receiver_is_temporary(sender: HttpSender) -> None:
    with pytest.raises(TemporaryError):
        await sender.warm(f"http://127.0.0.1:{free_port()}/hook")


async def test_fifty_concurrent_sends_all_arrive(sender: HttpSender, hooks: Hooks) -> None:
    results = await asyncio.gather(
        *(sender.send(f"{hooks.url}/ok", BODY, headers={"X-Vigil-Notification-Id": f"n-{i}"}) for i in range(50))
    )
    assert all(r.status == 200 and r.received_at is not None for r in results)
    assert sorted(r["headers"]["X-Vigil-Notification-Id"] for r in hooks.requests) == sorted(
        f"n-{i}" for i in range(50)
    )
    assert len(hooks.connections) <= 50
    again = await asyncio.gather(*(sender.send(f"{hooks.url}/ok", BODY) for _ in range(50)))
    assert all(r.status == 200 for r in again)
    assert len(hooks.connections) <= 50  # the second burst reuses the pool


async def test_the_sender_satisfies_the_notifiers_port() -> None:
    port: Sender = HttpSender(policy=ON_THIS_MACHINE)
    assert callable(port.send)
    assert callable(port.warm)


# -- a kept-alive connection the receiver dropped --------------------------------


class Forgetful:
    """A raw HTTP/1.1 server that answers the first request on each connection with
    keep-alive, then closes the connection when the second arrives (as a receiver
    does whose idle timeout fires just as the request is sent)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                if served == 1:
                    break  # drop it without an answer
                body = json.dumps({"received_at": time.time()}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                await writer.drain()
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        if self._handlers:
            await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 5)


@pytest.fixture
async def forgetful() -> AsyncIterator[Forgetful]:
    server = Forgetful()
    await server.start()
    yield server
    await server.stop()


async def test_a_post_on_a_connection_the_receiver_dropped_is_sent_again_at_once(forgetful: Forgetful) -> None:
    async with HttpSender(policy=ON_THIS_MACHINE) as http:
        first = await http.send(f"{forgetful.url}/hook", BODY)
        second = await http.send(f"{forgetful.url}/hook", BODY)
    assert (first.status, second.status) == (200, 200)
    assert forgetful.connections == 2
    assert forgetful.requests == 3  # the dropped one, then again on a fresh connection


async def test_on_sent_is_called_once_the_request_is_out_before_the_answer(sender: HttpSender, hooks: Hooks) -> None:
    """The committer waits for this, not for a slow consumer's answer."""
    sent = asyncio.Event()
    sending = asyncio.ensure_future(sender.send(f"{hooks.url}/slow", BODY, on_sent=sent.set))
    await asyncio.wait_for(sent.wait(), 2)
    assert not sending.done()  # /slow has not answered yet
    await asyncio.sleep(0.05)
    assert [r["path"] for r in hooks.requests] == ["/slow"]  # the receiver holds the whole request
    hooks.release.set()
    assert (await asyncio.wait_for(sending, 5)).status == 200
