"""Running an ASGI app with uvicorn inside the current event loop.

:class:`BackgroundServer` binds its socket at construction, so the port is
known (and free) even when 0 was asked for, before the server starts. The
API server (``vigil.wiring``), the sample VNF manager's webhook, the demos,
tests and benchmarks all run their servers this way.
"""

import asyncio
import contextlib
import socket
from typing import Any, Literal

import uvicorn


class BackgroundServer:
    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        lifespan: Literal["on", "off"] = "on",
        name: str = "vigil.api.server",
    ) -> None:
        # With its protocol named, asyncio sets TCP_NODELAY on every connection it accepts (it does only for
        # IPPROTO_TCP); with proto 0, Nagle's algorithm held each answer's body for the client's delayed ACK of
        # its headers, 40 ms on every request of a kept-alive connection but the first.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False)
        self._server = uvicorn.Server(config)
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connections(self) -> list[socket.socket]:
        """The sockets of the connections open now (to check how they are set)."""
        found = []
        for protocol in self._server.server_state.connections:
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                found.append(sock)
        return found

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name=self._name)
        while not self._server.started:
            if self._task.done():
                self._sock.close()
                with contextlib.suppress(SystemExit):  # uvicorn exits when the lifespan start-up fails
                    await self._task
                self._task = None
                raise RuntimeError(f"the server for {self.url} failed to start; its log says why")
            await asyncio.sleep(0.005)

    async def wait(self) -> None:
        """Until the server stops (Ctrl-C or SIGTERM when run from the command line)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
        self._sock.close()

    async def __aenter__(self) -> "BackgroundServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
