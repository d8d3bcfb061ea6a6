"""Helpers for tests that need a server: import as ``from support import ...``
(``tests`` is on pytest's ``pythonpath``)."""

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) unless something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc})"
    if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
    pytest.skip(reason)


def require_programs(names: list[str], install: str) -> None:
    """Skip (or, in CI, fail) when programs a test runs are not installed: ``names`` are the missing ones,
    ``install`` says how to get them."""
    if not names:
        return
    reason = f"{', '.join(names)} not installed ({install})"
    if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; VIGIL_REQUIRE_SERVICES=1 turns this skip into a failure")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards (skip or fail without PostgreSQL)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from vigil.store.sql import async_url

    server = async_url(POSTGRES_URL)
    require_service("PostgreSQL", server.host or "127.0.0.1", server.port or 5432)
    name = f"vigil_test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


class Receiver:
    """A real webhook receiver (FastAPI on a loopback port) that records what it gets.

    ``statuses`` scripts the answers (e.g. ``[500, 500]`` fails twice, then
    200); ``on_receive`` runs inside the request, before answering (to look
    at Vigil's state at the moment a notification arrives).
    """

    def __init__(self) -> None:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, Response

        self.url = ""
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.on_receive: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.arrived = asyncio.Event()
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST"])
        async def hook(path: str, request: Request) -> Response:
            received_at = time.time()
            if request.method != "POST":  # a callback test (GET, SOL 003) or a connection warm-up
                return Response(status_code=204)
            status = self.statuses.pop(0) if self.statuses else 200
            entry = {
                "path": "/" + path,
                "headers": dict(request.headers),
                "body": await request.json(),
                "received_at": received_at,
                "status": status,
            }
            if self.on_receive is not None and status < 300:
                await self.on_receive(entry)
            self.received.append(entry)
            self.arrived.set()
            return JSONResponse({"received_at": received_at}, status_code=status)

        self.app = app

    def delivered(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.received if r["status"] < 300 and (path is None or r["path"] == path)]

    async def wait_for(self, count: int, path: str | None = None, within_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` notifications were answered 2xx (on ``path``)."""
        deadline = time.monotonic() + within_s
        while len(self.delivered(path)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(self.delivered(path))} notifications on {path}, wanted {count}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.delivered(path)
