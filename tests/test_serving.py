"""BackgroundServer, which runs the demos' Vigil, the sample VNF manager's webhook and the tests' servers.

Seen: every answer on a kept-alive connection came 44 ms late (5 GETs of
``/healthz`` in a row: 18, 45, 44, 44, 44 ms; curl alike), while a new
connection each time took 2.5 ms. The listening socket was made without its
protocol (``proto`` 0), so asyncio did not set ``TCP_NODELAY`` on the
connections it accepted (it does so only for ``IPPROTO_TCP``), and Nagle's
algorithm held each answer's body until the client's delayed ACK of its
headers. ``vigil serve`` binds through uvicorn and was not affected.
"""

import socket

import httpx
from fastapi import FastAPI

from vigil.serving import BackgroundServer


async def test_connections_a_background_server_accepts_send_without_nagles_delay() -> None:
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, int]:
        return {"a": 1}

    async with BackgroundServer(app, lifespan="off") as server, httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):  # one connection, kept alive
            assert (await client.get("/x")).json() == {"a": 1}
        connections = server.connections()
        assert len(connections) == 1
        (accepted,) = connections
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
