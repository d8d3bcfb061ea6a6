"""Helpers of the agent tests: ``ip`` commands, veth pairs, and a stand-in for
Vigil's southbound API (import as ``from agent.nets import ...``)."""

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def veth(ns: str, a: str, b: str, *, peer_ns: str | None = None) -> None:
    """A veth pair ``a``-``b`` in ``ns`` (``b`` moved to ``peer_ns``), both up."""
    ip("-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
    if peer_ns is not None:
        ip("-n", ns, "link", "set", b, "netns", peer_ns)
    ip("-n", ns, "link", "set", a, "up")
    ip("-n", peer_ns or ns, "link", "set", b, "up")


class EventSink:
    """Vigil's ``PUT /events`` on a loopback port: records each request's events
    and when they arrived; ``statuses`` scripts the answers (then 200)."""

    def __init__(self) -> None:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        self.requests: list[tuple[float, list[dict[str, Any]]]] = []
        self.statuses: list[int] = []
        self.arrived = asyncio.Event()
        app = FastAPI()

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.put("/events")
        async def events(request: Request) -> JSONResponse:
            at = time.time()
            status = self.statuses.pop(0) if self.statuses else 200
            self.requests.append((at, await request.json()))
            self.arrived.set()
            return JSONResponse({"events": []}, status_code=status)

        self.app = app

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for _, batch in self.requests for e in batch]

    async def wait_for(self, check: Callable[[list[dict[str, Any]]], bool], within_s: float = 10.0) -> None:
        deadline = time.monotonic() + within_s
        while not check(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"events so far: {self.events}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                continue
