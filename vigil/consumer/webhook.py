"""The sample VNF manager's HTTP endpoint, and running the whole consumer.

:class:`WebhookApp` is a bare ASGI app (no framework: a notification is
stamped with ``time.time()`` the moment uvicorn hands it over):

* ``POST`` on any path: a notification; the manager acts on it before the
  answer, ``200 {"received_at": <unix s>}`` (Vigil keeps that as the
  fault's T09), or 400 for a body that is not a notification; a
  maintenance message goes to an :class:`AppManager` (another manager
  acknowledges it and does nothing);
* ``GET /state``: the manager's state as JSON;
* any other ``GET``: 204, as SOL 003 tests a callback URI;
* anything else: 405.

:class:`WebhookServer` runs it with uvicorn on a loopback socket bound
before start, inside the current event loop; :func:`running_consumer`
starts server, client and manager together and stops them in order.
"""

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from vigil.consumer.app_manager import AppManager
from vigil.consumer.client import VigilClient
from vigil.consumer.manager import Switchover, VnfManager, VnfSpec
from vigil.consumer.notifications import BadNotification, parse_maintenance, parse_notification
from vigil.serving import BackgroundServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NOTIFY_PATH = "/notify"


class WebhookApp:
    def __init__(self, manager: VnfManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        received_at = time.time()
        method, path = scope["method"], scope["path"]
        if method == "POST":
            body = await _read_body(receive)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                document = json.loads(body)
                notice = parse_maintenance(document, headers)
                if notice is not None:
                    if isinstance(self.manager, AppManager):
                        self.manager.receive_maintenance(notice)
                    await _answer(send, 200, {"received_at": received_at})
                    return
                note = parse_notification(document, headers, received_at=received_at, path=path)
            except (ValueError, KeyError, BadNotification) as exc:
                await _answer(send, 400, {"error": f"not a notification: {exc}"})
                return
            self.manager.receive(note)
            await _answer(send, 200, {"received_at": received_at})
        elif method == "GET" and path == "/state":
            await _answer(send, 200, self.manager.state())
        elif method in ("GET", "HEAD"):
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await _answer(send, 405, {"error": f"{method} is not allowed here"})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: Any) -> None:
    data = json.dumps(payload, default=str).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class WebhookServer(BackgroundServer):
    """uvicorn serving the webhook app on a socket bound at construction (port 0 picks a free one)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(app, host, port, lifespan="off", name="vigil.consumer.webhook")


@contextlib.asynccontextmanager
async def running_consumer(
    url: str,
    token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    project: str | None = None,
    payload_format: str = "aodh",
    spec: VnfSpec | None = None,
    on_event: Callable[[str], None] | None = None,
    on_switchover: Callable[[Switchover], None] | None = None,
    unsubscribe_at_exit: bool = False,
    maintenance: bool = False,
    recreate: bool = True,
) -> AsyncIterator[tuple[VnfManager, WebhookServer]]:
    """A sample VNF manager of ``project`` against the Vigil at ``url``, listening on host:port;
    with ``maintenance`` the app manager, which also takes part in maintenance sessions; without
    ``recreate`` it leaves failed instances to the cloud's recovery (see :class:`VnfManager`)."""
    client = VigilClient(url, token)
    kind = AppManager if maintenance else VnfManager
    manager = kind(
        client,
        project=project,
        payload_format=payload_format,
        spec=spec,
        on_event=on_event,
        on_switchover=on_switchover,
        recreate=recreate,
    )
    server = WebhookServer(WebhookApp(manager), host, port)
    try:
        await server.start()
        await manager.start(f"{server.url}{NOTIFY_PATH}")
        yield manager, server
    finally:
        await manager.aclose()
        if unsubscribe_at_exit:
            with contextlib.suppress(Exception):
                await manager.unsubscribe()
        await server.stop()
        await client.aclose()
