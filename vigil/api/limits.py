"""Request limits enforced before a route runs: body size, and no NUL in paths or queries.

A declared ``Content-Length`` over the limit is refused at once; a chunked
body is counted as it streams and refused the moment it passes the limit
(an HTTPException raised from ``receive``, which FastAPI passes on to the
JSON error handler), so a large upload never sits in memory. Either way the
answer is 413 in the API's JSON error shape.

A NUL character in the path or a query parameter is refused with 400 by
:class:`NulRefusal`: no resource has one in its name, and PostgreSQL refuses
it in a query's parameters (request bodies are checked by their models,
``vigil.api.storable``).
"""

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes``, 400 for a bad Content-Length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number")
                return
            if length > self.max_bytes:
                await _reply(send, 413, f"request body over {self.max_bytes} bytes")
                return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counted_receive, send)


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class NulRefusal:
    """ASGI middleware: 400 for a NUL character in the path or a query parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = nul_problem(scope.get("path", ""), scope.get("query_string", b""))
            if problem is not None:
                await _reply(send, 400, problem)
                return
        await self.app(scope, receive, send)


def nul_problem(path: str, query_string: bytes) -> str | None:
    """Why a request's path or query cannot be served (it holds NUL), or None."""
    if "\x00" in path:
        return "the path contains a NUL character"
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"query parameter {name!r} contains a NUL character"
    return None
