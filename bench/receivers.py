"""Webhook receivers for the benchmarks: many real HTTP servers in one process.

    python -m bench.receivers --count 200

binds ``count`` HTTP/1.1 servers on 127.0.0.1 (each its own port), prints
one JSON line ``{"ports": [...]}`` once all listen, and serves until its
standard input closes (the benchmark that started it exits or closes the
pipe). Each server answers a ``POST`` with ``200 {"received_at": <unix s>}``,
stamped with ``time.time()`` the moment the request is complete (Vigil
keeps it as the fault's T09), and a ``GET`` with 204 (a callback test).
Connections are kept alive. Requests are parsed with httptools (the parser
uvicorn uses) on uvloop when it is installed, so a receiver costs tens of
microseconds per request and the benchmark measures Vigil, not its
consumers.
"""

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import httptools

_POST_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


class Receiver(asyncio.Protocol):
    def __init__(self, port: int, counts: Counter[int]) -> None:
        self._port = port
        self._counts = counts
        self._parser = httptools.HttpRequestParser(self)
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # uvloop's transports are no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_message_complete(self) -> None:
        received_at = time.time()
        if self._transport is None:
            return
        if self._parser.get_method() == b"POST":
            self._counts[self._port] += 1
            body = b'{"received_at": %r}' % received_at
            self._transport.write(_POST_HEAD + str(len(body)).encode() + b"\r\n\r\n" + body)
        else:
            self._transport.write(_NO_CONTENT)
        if not self._parser.should_keep_alive():
            self._transport.close()


async def serve(count: int) -> None:
    loop = asyncio.get_running_loop()
    counts: Counter[int] = Counter()
    servers = []
    for _ in range(count):
        holder: list[int] = []
        server = await loop.create_server(
            lambda holder=holder: Receiver(holder[0], counts),  # type: ignore[misc]
            "127.0.0.1",
            0,
            backlog=1024,
        )
        holder.append(server.sockets[0].getsockname()[1])
        servers.append((server, holder[0]))
    print(json.dumps({"ports": [port for _, port in servers]}), flush=True)
    await loop.run_in_executor(None, sys.stdin.buffer.read)  # until the benchmark closes the pipe
    for server, _ in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1, help="how many servers (ports)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.count))
    else:
        uvloop.run(serve(args.count))


if __name__ == "__main__":
    main()
