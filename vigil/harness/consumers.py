"""Webhook receivers that remember every notification, byte for byte.

A :class:`Recorder` is a bare ASGI app on a real loopback socket
(``vigil.serving.BackgroundServer``). It answers a POST with 204 after
``delay_s`` (a slow consumer), or is not started at all (an absent one: its
port refuses connections). Every body it accepted is kept with the
notification id from ``X-Vigil-Notification-Id`` and read into the alarm it
names (``vigil.consumer.notifications``), so the harness can check that no
notification id came with two bodies and that every alarm a consumer heard of
exists in Vigil.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vigil.consumer.notifications import NOTIFICATION_HEADER, BadNotification, parse_notification
from vigil.serving import BackgroundServer

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Heard:
    """One notification as a consumer accepted it."""

    notification: str
    body: bytes
    alarm_id: str
    cleared: bool
    at: float


@dataclass
class Recorder:
    name: str
    delay_s: float = 0.0
    heard: list[Heard] = field(default_factory=list)
    unreadable: list[bytes] = field(default_factory=list)
    server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError(f"consumer {self.name} is not listening")
        return f"{self.server.url}/{self.name}"

    async def start(self, port: int = 0) -> None:
        self.server = BackgroundServer(self, port=port, lifespan="off", name=f"vigil.harness.consumer.{self.name}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self._keep(dict(scope["headers"]), b"".join(chunks))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def _keep(self, raw_headers: dict[bytes, bytes], body: bytes) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers.items()}
        now = time.time()
        try:
            document = json.loads(body)
            parsed = parse_notification(document, headers, received_at=now)
            alarm = vigil_alarm_id(document)
        except (BadNotification, ValueError, KeyError, TypeError):
            self.unreadable.append(body)
            return
        self.heard.append(Heard(headers.get(NOTIFICATION_HEADER, ""), body, alarm, parsed.cleared, now))


def vigil_alarm_id(document: dict[str, Any]) -> str:
    """Vigil's own alarm id in a notification: SOL 003's ``alarm.id`` or ``alarmId``, or the
    ``vigil_alarm_id`` trait of an Aodh body (whose ``alarm_id`` is the subscription's, as in Aodh)."""
    if "notificationType" in document:
        return str(document["alarm"]["id"] if "alarm" in document else document["alarmId"])
    traits = {name: value for name, _, value in document["reason_data"]["event"]["traits"]}
    return str(traits["vigil_alarm_id"])
