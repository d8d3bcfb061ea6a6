"""Monitors as the crash harness plays them: they report, and re-send what got no 2xx.

Each :class:`Monitor` owns some hosts and reports their failures and
recoveries through Doctor's southbound API (``POST /v1/event`` or, now and
then, several at once with ``PUT /events``). Like a real monitor (``vigil
agent``'s reporter, a Zabbix action) it reports one thing per host at a
time: a report that got no 2xx (the server died, or answered 5xx) is sent
again, with the same ``monitor_event_id``, until one does; only then does the
host's next report go out. So for every host the monitor knows the last
report Vigil acknowledged, and whether one is still unanswered: the harness
checks Vigil's state against exactly that.
"""

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

DOWN, UP = "down", "up"


@dataclass
class Report:
    monitor: str
    event_id: str
    host: str
    status: str
    sent: int = 0
    outcome: str | None = None  # Vigil's answer, once acknowledged
    # Detected once: a retry re-sends the same body, and (monitor, id, time) is what makes it a duplicate.
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def body(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "type": f"compute.host.{self.status}",
            "details": {
                "hostname": self.host,
                "status": self.status,
                "monitor": self.monitor,
                "monitor_event_id": self.event_id,
            },
        }


@dataclass
class Monitor:
    name: str
    hosts: list[str]
    counter: int = 0
    pending: dict[str, Report] = field(default_factory=dict)  # host → the report not yet acknowledged
    last: dict[str, Report] = field(default_factory=dict)  # host → the last report acknowledged
    acknowledged: list[Report] = field(default_factory=list)
    duplicates_checked: int = 0
    wrong_duplicates: list[str] = field(default_factory=list)

    def next_report(self, host: str) -> Report:
        """The host's unanswered report, or a new one flipping what was last acknowledged."""
        if host in self.pending:
            return self.pending[host]
        previous = self.last.get(host)
        status = UP if previous is not None and previous.status == DOWN else DOWN
        self.counter += 1
        report = Report(self.name, f"{self.name}-{self.counter:06d}", host, status)
        self.pending[host] = report
        return report

    def expected_down(self, host: str) -> bool | None:
        """Whether Vigil must show the host down (None while a report of it is unanswered)."""
        if host in self.pending:
            return None
        last = self.last.get(host)
        return last is not None and last.status == DOWN

    async def step(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        """One round of reporting: one host, several at once, or an acknowledged report again."""
        roll = rng.random()
        if roll < 0.1 and self.acknowledged:
            await self._repeat(client, rng.choice(self.acknowledged[-20:]))
        elif roll < 0.3:
            hosts = rng.sample(self.hosts, k=min(len(self.hosts), rng.randint(2, 3)))
            await self._send(client, [self.next_report(h) for h in hosts])
        else:
            await self._send(client, [self.next_report(rng.choice(self.hosts))])

    async def flush(self, client: httpx.AsyncClient, *, timeout_s: float = 60.0) -> None:
        """Send every unanswered report again until each is acknowledged."""
        async with asyncio.timeout(timeout_s):
            while self.pending:
                await self._send(client, list(self.pending.values()))
                if self.pending:
                    await asyncio.sleep(0.1)

    async def _send(self, client: httpx.AsyncClient, reports: list[Report]) -> None:
        for report in reports:
            report.sent += 1
        try:
            if len(reports) == 1:
                response = await client.post("/v1/event", json=reports[0].body())
                answers = [response.json()["event"]] if response.status_code == 200 else []
            else:
                response = await client.put("/events", json=[r.body() for r in reports])
                answers = response.json()["events"] if response.status_code == 200 else []
        except (httpx.TransportError, ValueError):
            return  # no answer: all of them stay pending
        if response.status_code != 200:
            return
        for report, answer in zip(reports, answers, strict=True):
            report.outcome = answer["outcome"]
            self.pending.pop(report.host, None)
            self.last[report.host] = report
            self.acknowledged.append(report)

    async def _repeat(self, client: httpx.AsyncClient, report: Report) -> None:
        """A client that sends an acknowledged report again must hear ``duplicate``."""
        try:
            response = await client.post("/v1/event", json=report.body())
        except httpx.TransportError:
            return
        if response.status_code != 200:
            return
        self.duplicates_checked += 1
        outcome = response.json()["event"]["outcome"]
        if outcome != "duplicate":
            self.wrong_duplicates.append(f"{report.event_id} sent again was {outcome}, not duplicate")
