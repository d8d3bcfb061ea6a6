"""Gateway probes between two namespaces the test makes, and process checks."""

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

from agent.nets import ip, veth
from vigil.agent.probes import GatewayProbe, ProcessCheck, alive_instances, alive_processes, echo_request


class Verdicts:
    def __init__(self) -> None:
        self.seen: list[tuple[bool, str]] = []
        self.event = asyncio.Event()

    def __call__(self, up: bool, at: float, cause: str) -> None:
        self.seen.append((up, cause))
        self.event.set()

    async def wait(self, count: int) -> list[bool]:
        async with asyncio.timeout(10):
            while len(self.seen) < count:
                self.event.clear()
                await self.event.wait()
        return [up for up, _ in self.seen]


def test_an_echo_request_carries_a_valid_checksum() -> None:
    packet = echo_request(0x1234, 7)
    words = [int.from_bytes(packet[i : i + 2], "big") for i in range(0, len(packet) - 1, 2)]
    if len(packet) % 2:
        words.append(packet[-1] << 8)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF


async def test_the_gateway_is_lost_after_mult_missed_replies_and_found_at_the_next(
    netns: Callable[[], str],
) -> None:
    host, gateway = netns(), netns()
    veth(host, "vgtest-dp", "vgtest-gw", peer_ns=gateway)
    ip("-n", host, "addr", "add", "198.18.0.2/24", "dev", "vgtest-dp")
    ip("-n", gateway, "addr", "add", "198.18.0.1/24", "dev", "vgtest-gw")
    verdicts = Verdicts()
    probe = GatewayProbe("198.18.0.1", verdicts, interval_s=0.02, mult=3, netns=host)
    await probe.start()
    try:
        assert await verdicts.wait(1) == [True]
        ip("-n", gateway, "link", "set", "vgtest-gw", "down")
        assert await verdicts.wait(2) == [True, False]
        assert "no echo reply" in verdicts.seen[1][1]
        ip("-n", gateway, "link", "set", "vgtest-gw", "up")
        assert await verdicts.wait(3) == [True, False, True]
        assert probe.replies > 0
    finally:
        await probe.aclose()


async def test_an_unreachable_gateway_is_reported_lost_from_the_start(netns: Callable[[], str]) -> None:
    host = netns()
    verdicts = Verdicts()
    probe = GatewayProbe("198.18.0.1", verdicts, interval_s=0.02, mult=3, netns=host)  # no route at all
    await probe.start()
    try:
        assert await verdicts.wait(1) == [False]
    finally:
        await probe.aclose()


async def test_processes_are_found_by_name_by_script_and_by_pidfile(
    tmp_path: Path, service: tuple[str, "subprocess.Popen[bytes]"]
) -> None:
    name, proc = service
    pidfile = tmp_path / "service.pid"
    pidfile.write_text(f"{proc.pid}\n")
    names = [name, f"pidfile:{pidfile}", "vgtest-nothing", f"pidfile:{tmp_path / 'none.pid'}"]
    alive = await asyncio.to_thread(alive_processes, names)
    assert alive == {names[0]: True, names[1]: True, names[2]: False, names[3]: False}

    seen: list[tuple[str, bool]] = []
    check = ProcessCheck(names[:2], lambda name, up, at, cause: seen.append((name, up)), interval_s=0.05)
    await check.check()
    proc.kill()
    await asyncio.to_thread(proc.wait)
    await check.check()
    assert seen == [(names[0], True), (names[1], True), (names[0], False), (names[1], False)]


async def test_instance_pid_files_report_deaths_keep_unreadable_ones_and_forget_removed_ones(tmp_path: Path) -> None:
    alive = subprocess.Popen(["sleep", "60"])  # noqa: ASYNC220
    dead = subprocess.Popen(["true"])  # noqa: ASYNC220
    dead.wait()
    try:
        (tmp_path / "a.pid").write_text(f"{alive.pid}\n")
        (tmp_path / "b.pid").write_text(f"{dead.pid}\n")
        seen: list[tuple[str, bool]] = []
        check = ProcessCheck((), lambda n, up, at, c: seen.append((n, up)), scan=lambda: alive_instances(tmp_path))
        await check.check()
        (tmp_path / "a.pid").write_text("")  # being rewritten: not known this time
        await check.check()
        (tmp_path / "b.pid").unlink()  # gone: forgotten, no report
        await check.check()
    finally:
        alive.kill()
        alive.wait()

    assert sorted(seen) == [("a", True), ("b", False)]
    assert check.state == {"a": True}
