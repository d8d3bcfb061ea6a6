"""The probe client: a steady stream of requests to the service, every outcome recorded.

``python -m vigil.testbed.probe --target IP:PORT --rate R --out FILE`` runs
in the gateway's namespace (the clients' side of the data centre) and sends
one UDP request every ``1/R`` s, on a fixed schedule (a late wake-up sends
what is due at once). Each request carries its sequence number; each reply
names the instance that answered. With several ``--target`` options the
requests go to them in turn: request ``SEQ`` (from 1) to target
``(SEQ - 1) mod N`` in the order given (:func:`target_of`). It appends one
line per outcome to ``FILE``::

    ok SEQ SENT RECEIVED INSTANCE
    lost SEQ SENT

(times in Unix seconds; a request is lost when no reply came within
``--timeout``). It runs until SIGTERM or SIGINT, then writes the requests
still in flight as lost if their time is up, and exits.

:func:`read_samples` reads such a file, :func:`outage` measures an outage
in it: from the last request answered before the fault (sent before T00)
to the first one answered after it, both by send time. The resolution is
the probe's interval.
"""

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

HEADER = struct.Struct("!Qd")  # sequence number, send time


class Probe:
    def __init__(self, targets: Sequence[tuple[str, int]], rate: float, timeout_s: float, out: TextIO) -> None:
        if not targets:
            raise ValueError("the probe needs a target")
        self.targets = list(targets)
        self.interval = 1.0 / rate
        self.timeout_s = timeout_s
        self.out = out
        self.sent: dict[int, float] = {}
        self.seq = 0
        self._stop = asyncio.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def _receive(self) -> None:
        while True:
            try:
                data = self._sock.recv(2048)
            except BlockingIOError:
                return
            except OSError:  # e.g. ICMP unreachable reported on the socket
                continue
            received = time.time()
            if len(data) < HEADER.size:
                continue
            seq, sent = HEADER.unpack_from(data)
            if self.sent.pop(seq, None) is None:
                continue  # late, already counted lost
            server = data[HEADER.size :].decode(errors="replace").strip() or "-"
            self.out.write(f"ok {seq} {sent:.6f} {received:.6f} {server}\n")

    def _expire(self, now: float) -> None:
        cutoff = now - self.timeout_s
        for seq, sent in list(self.sent.items()):
            if sent > cutoff:
                break  # insertion order is send order
            del self.sent[seq]
            self.out.write(f"lost {seq} {sent:.6f}\n")

    def _send(self) -> None:
        self.seq += 1
        sent = time.time()
        self.sent[self.seq] = sent
        with contextlib.suppress(OSError):
            self._sock.sendto(HEADER.pack(self.seq, sent), self.targets[target_of(self.seq, len(self.targets))])

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._sock.fileno(), self._receive)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        start = time.monotonic()
        due = 0
        last_flush = start
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                while start + due * self.interval <= now:
                    self._send()
                    due += 1
                self._expire(time.time())
                if now - last_flush > 0.05:
                    self.out.flush()
                    last_flush = now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), max(0.0, start + due * self.interval - time.monotonic()))
        finally:
            loop.remove_reader(self._sock.fileno())
            deadline = time.time() + self.timeout_s
            while self.sent and time.time() < deadline:  # let the last replies in
                await asyncio.sleep(0.01)
                self._receive()
            self._expire(float("inf"))
            self.out.flush()
            self._sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send requests to a UDP service at a steady rate, record each.")
    parser.add_argument(
        "--target", required=True, action="append", help="IP:PORT (several: the requests go to each in turn)"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (at least 200)")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds before a request counts as lost")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    targets = []
    for target in args.target:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            parser.error(f"--target takes IP:PORT, not {target!r}")
        targets.append((host, int(port)))
    if args.rate < 1:
        parser.error("--rate must be at least 1")
    with args.out.open("a", buffering=1 << 16) as out:
        asyncio.run(Probe(targets, args.rate, args.timeout, out).run())
    return 0


# -- reading the record ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    seq: int
    sent: float
    ok: bool
    received: float | None = None
    server: str | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    last_ok_before: float  # send time of the last request answered, sent before T00
    first_ok_after: float  # send time of the first request answered, sent after T00
    lost: int  # requests sent between the two and not answered
    served_by: str | None  # the instance that answered first after the fault

    @property
    def ms(self) -> float:
        return (self.first_ok_after - self.last_ok_before) * 1000


def target_of(seq: int, targets: int) -> int:
    """Which of ``targets`` targets (their index, in the order given) request ``seq`` went to."""
    return (seq - 1) % targets


def read_samples(path: Path) -> list[Sample]:
    samples = []
    with path.open() as lines:
        for line in lines:
            parts = line.split()
            if len(parts) == 5 and parts[0] == "ok":
                samples.append(Sample(int(parts[1]), float(parts[2]), True, float(parts[3]), parts[4]))
            elif len(parts) == 3 and parts[0] == "lost":
                samples.append(Sample(int(parts[1]), float(parts[2]), False))
    samples.sort(key=lambda s: s.seq)
    return samples


def outage(samples: list[Sample], t00: float, broken: float | None = None) -> Outage | None:
    """The outage around a fault injected at ``t00`` (the injecting call returned at ``broken``):
    None while no request sent after it was answered."""
    before = [s for s in samples if s.sent < t00 and s.ok]
    after = [s for s in samples if s.sent >= (t00 if broken is None else broken) and s.ok]
    if not before or not after:
        return None
    last, first = before[-1], after[0]
    answered = sum(1 for s in samples if last.seq < s.seq < first.seq and s.ok)
    lost = first.seq - last.seq - 1 - answered  # unanswered, whether or not their timeout has passed yet
    return Outage(last.sent, first.sent, lost, first.server)


if __name__ == "__main__":
    sys.exit(main())
