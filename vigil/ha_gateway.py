"""The API of a highly available ``vigil serve``: a standby answers 503, the leader the whole API.

A standby binds its port at once and answers every request with 503,
``Retry-After`` and the JSON error every client of Vigil already reads, so
a load balancer, an agent or a VNF manager that reached it tries again (or
another address) instead of waiting on a process that may never lead. Once
the process takes the leader's lease, :meth:`HaGateway.lead` runs the real
API's start-up and hands every request to it.

``GET /healthz`` says which, for load balancers (as Patroni's ``/primary``
does): 200 ``{"status": "ok", "role": "leader", "epoch": N}`` on the
leader, 503 ``{"status": "standby", "role": "standby"}`` on a standby, so a
health-checked balancer sends traffic only to the leader.
"""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STANDBY_MESSAGE = "this Vigil is a standby: the leader answers (a load balancer's health check finds it)"


class HaGateway:
    """An ASGI app: the standby's answers until :meth:`lead`, then the real API (see the module)."""

    def __init__(self, *, retry_after_s: int = 1) -> None:
        self._app: FastAPI | None = None
        self._epoch = 0
        self._lifespan: AbstractAsyncContextManager[Any] | None = None
        self._retry_after = str(max(1, retry_after_s))

    @property
    def leading(self) -> bool:
        return self._app is not None

    async def lead(self, app: FastAPI, epoch: int) -> None:
        """Run ``app``'s start-up (its lifespan) and answer with it from now on."""
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        self._lifespan, self._epoch, self._app = lifespan, epoch, app

    async def aclose(self) -> None:
        """Stop answering as the leader and run the API's shut-down."""
        lifespan, self._lifespan, self._app = self._lifespan, None, None
        if lifespan is not None:
            await lifespan.__aexit__(None, None, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the real API's runs in lead(), when there is one
            await _lifespan_done(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            if self._app is not None:
                await _answer(send, 200, {"status": "ok", "role": "leader", "epoch": self._epoch})
            else:
                await _answer(send, 503, {"status": "standby", "role": "standby"}, self._retry_after)
            return
        if self._app is not None:
            await self._app(scope, receive, send)
            return
        error = {"error": {"code": "standby", "message": STANDBY_MESSAGE}}
        await _answer(send, 503, error, self._retry_after)


async def _answer(send: Send, status: int, body: dict[str, Any], retry_after: str | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan_done(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
