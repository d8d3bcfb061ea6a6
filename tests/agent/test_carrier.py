"""NIC carrier from netlink notifications, on veth pairs in a namespace the test makes."""

import asyncio
import time
from collections.abc import Callable

from agent.nets import ip, veth
from vigil.agent.carrier import CarrierWatcher, link_is_up


class Changes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, float, str]] = []
        self.event = asyncio.Event()

    def __call__(self, nic: str, up: bool, at: float, cause: str) -> None:
        self.seen.append((nic, up, at, cause))
        self.event.set()

    async def wait(self, count: int) -> list[tuple[str, bool]]:
        async with asyncio.timeout(10):
            while len(self.seen) < count:
                self.event.clear()
                await self.event.wait()
        return [(nic, up) for nic, up, *_ in self.seen]


def test_a_link_is_up_with_admin_up_carrier_and_no_down_operstate() -> None:
    assert link_is_up(0x1 | 0x10000, "UP")
    assert link_is_up(0x1 | 0x10000, "UNKNOWN")
    assert not link_is_up(0x1, "LOWERLAYERDOWN")
    assert not link_is_up(0x10000, "DOWN")
    assert not link_is_up(0x1 | 0x10000, "DORMANT")


async def test_the_watcher_reports_initial_state_then_carrier_loss_and_return_at_once(
    netns: Callable[[], str],
) -> None:
    ns = netns()
    veth(ns, "vgtest-a", "vgtest-b")
    veth(ns, "vgtest-c", "vgtest-d")
    changes = Changes()
    watcher = CarrierWatcher(["vgtest-a", "vgtest-c", "vgtest-gone"], changes, netns=ns)
    watcher.start()
    try:
        assert sorted(await changes.wait(3)) == [("vgtest-a", True), ("vgtest-c", True), ("vgtest-gone", False)]

        before = time.time()
        ip("-n", ns, "link", "set", "vgtest-b", "down")  # the peer: vgtest-a loses its carrier
        assert (await changes.wait(4))[3] == ("vgtest-a", False)
        _, _, at, cause = changes.seen[3]
        assert at >= before
        assert "LOWERLAYERDOWN" in cause

        ip("-n", ns, "link", "set", "vgtest-c", "down")  # administratively down
        ip("-n", ns, "link", "set", "vgtest-b", "up")
        assert (await changes.wait(6))[4:] == [("vgtest-c", False), ("vgtest-a", True)]

        ip("-n", ns, "link", "delete", "vgtest-a")
        assert (await changes.wait(7))[6] == ("vgtest-a", False)
        assert watcher.state == {"vgtest-a": False, "vgtest-c": False, "vgtest-gone": False}
    finally:
        watcher.close()


async def test_a_nic_that_appears_later_is_reported_up(netns: Callable[[], str]) -> None:
    ns = netns()
    changes = Changes()
    watcher = CarrierWatcher(["vgtest-late"], changes, netns=ns)
    watcher.start()
    try:
        assert await changes.wait(1) == [("vgtest-late", False)]
        veth(ns, "vgtest-late", "vgtest-peer")
        assert (await changes.wait(2))[1] == ("vgtest-late", True)
    finally:
        watcher.close()
