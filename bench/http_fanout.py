"""HTTP fan-out: how long the notifier's sender takes to reach N receivers.

The floor under Doctor's notification time: from just before
``gather(send x N)`` to the moment the last receiver has the whole request,
on connections that were opened beforehand (``HttpSender.warm`` and a few
unmeasured rounds), as they are when subscriptions already exist. It
measures the HTTP adapter alone (``vigil.delivery.http.HttpSender``), not
matching, rendering, or the store: ``bench.notify`` measures the whole
fault path.

Cases:

* ``N`` = 1, 10, 50 notifications to one receiver (one webhook endpoint
  per project: the 50 VMs of one failed host owned by 50 projects);
* ``rack``: one notification to each of 200 receivers on distinct ports
  (a rack failure, 200 projects).

The receivers are real HTTP servers in a separate process
(``bench.receivers``) answering ``{"received_at": time.time()}`` stamped
when the request is complete; that stamp is what the sender returns as
``SendResult.received_at`` (T09), so "last receipt" is
``max(received_at) - t0`` on the same machine's clock. "all answered" is
when the sender has every response. Each case runs on asyncio's own event
loop and on uvloop (what ``vigil serve`` runs on), side by side, and with
the garbage collector as it comes (``default``) or with every object that
exists after the warm-up moved out of its reach (``frozen``: ``gc.freeze()``,
as a server can do once it has started), since a collection that lands
inside a round is what makes most of the p99.

    python -m bench.http_fanout [--rounds 100] [--warmup 5] [--sizes 1 10 50] [--rack 200]
                                [--loops asyncio uvloop] [--gc default frozen]
"""

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from bench.stats import emit
from vigil.delivery.http import HttpSender
from vigil.domain.alarms import AckState, Alarm, AlarmChange, AlarmId, AlarmKind, AlarmState, Lifecycle
from vigil.domain.deliveries import notification_id
from vigil.domain.faults import FaultId, Severity
from vigil.domain.subscriptions import PayloadFormat, Subscription, SubscriptionId
from vigil.notifier.formats import render

HEADER = "X-Vigil-Notification-Id"


class Receivers:
    """``bench.receivers`` in a child process: ``count`` HTTP servers, one port each."""

    def __init__(self, count: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.receivers", "--count", str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the receivers did not start")
        self.ports: list[int] = json.loads(line)["ports"]

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()  # the receivers serve until their stdin closes
        self._process.wait(timeout=10)

    def __enter__(self) -> "Receivers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bodies(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` SOL 003 AlarmNotifications, one per project, as the notifier renders them."""
    now = datetime.now(UTC)
    rendered = []
    for i in range(count):
        project = f"project-{i}"
        alarm = Alarm(
            id=AlarmId(f"alarm-{i}"),
            kind=AlarmKind.INSTANCE_DOWN,
            project=project,
            resource_type="instance",
            resource_id=project,
            severity=Severity.CRITICAL,
            state=AlarmState.ACTIVE,
            ack_state=AckState.UNACKNOWLEDGED,
            fault=FaultId("fault-bench"),
            raised_at=now,
            changed_at=now,
            reason="host failure affecting your instances",
            resource_ids=[f"{project}-vm-{n}" for n in range(2)],
            details={"description": "host failure affecting your instances", "host_status": "DOWN"},
        )
        subscription = Subscription(
            id=SubscriptionId(f"sub-{i}"),
            project=project,
            admin=False,
            callbacks=[],
            format=PayloadFormat.SOL003,
            created_at=now,
        )
        nid = notification_id(alarm.id, alarm.version, subscription.id)
        body = render(subscription, AlarmChange(Lifecycle.RAISED, alarm), nid, resource_ids=alarm.resource_ids, now=now)
        rendered.append((body, {HEADER: str(nid)}))
    return rendered


async def fan_out(
    sender: HttpSender, urls: Sequence[str], payloads: Sequence[tuple[bytes, dict[str, str]]]
) -> tuple[float, float, float]:
    """One round: (first receipt, last receipt, all answered), in ms after t0."""
    t0 = time.time()
    results = await asyncio.gather(
        *(sender.send(url, body, headers=headers) for url, (body, headers) in zip(urls, payloads, strict=True))
    )
    answered = time.time()
    received = [r.received_at for r in results if r.received_at is not None]
    if len(received) != len(urls):
        raise RuntimeError("a receiver did not report its receive time")
    return (min(received) - t0) * 1000, (max(received) - t0) * 1000, (answered - t0) * 1000


async def measure(
    loop_name: str, gc_mode: str, case: str, urls: Sequence[str], rounds: int, warmup: int, pause_s: float
) -> None:
    payloads = bodies(len(urls))
    async with HttpSender() as sender:
        for url in dict.fromkeys(urls):
            await sender.warm(url)
        for _ in range(warmup):  # opens as many connections per receiver as a round needs, unmeasured
            await fan_out(sender, urls, payloads)
        if gc_mode == "frozen":
            gc.collect()
            gc.freeze()
        first: list[float] = []
        last: list[float] = []
        answered: list[float] = []
        for _ in range(rounds):
            await asyncio.sleep(pause_s)
            a, b, c = await fan_out(sender, urls, payloads)
            first.append(a)
            last.append(b)
            answered.append(c)
    gc.unfreeze()
    params = {
        "loop": loop_name,
        "gc": gc_mode,
        "case": case,
        "notifications": len(urls),
        "receivers": len(set(urls)),
        "body_bytes": len(payloads[0][0]),
    }
    emit("http_fanout", {**params, "metric": "last_receipt"}, "ms", last)
    emit("http_fanout", {**params, "metric": "first_receipt"}, "ms", first)
    emit("http_fanout", {**params, "metric": "all_answered"}, "ms", answered)


def runner(loop_name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="measured rounds per case (at least 30)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured rounds first")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50], help="notifications to one receiver")
    parser.add_argument("--rack", type=int, default=200, help="receivers on distinct ports, one each (0: skip)")
    parser.add_argument("--loops", nargs="+", default=["asyncio", "uvloop"], choices=["asyncio", "uvloop"])
    parser.add_argument("--gc", nargs="+", default=["default", "frozen"], choices=["default", "frozen"])
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between rounds")
    args = parser.parse_args(argv)
    if args.rounds < 30:
        parser.error("at least 30 rounds, so p99 means something")
    with Receivers(max(1, args.rack)) as receivers:
        single = f"http://127.0.0.1:{receivers.ports[0]}/hook"
        cases: list[tuple[str, list[str]]] = [(f"N={n}", [single] * n) for n in args.sizes]
        if args.rack:
            cases.append((f"rack={args.rack}", [f"http://127.0.0.1:{p}/hook" for p in receivers.ports]))
        for case, urls in cases:
            for gc_mode in args.gc:  # side by side, case by case
                for loop_name in args.loops:
                    work = measure(loop_name, gc_mode, case, urls, args.rounds, args.warmup, args.pause)
                    runner(loop_name)(work)


if __name__ == "__main__":
    main()
