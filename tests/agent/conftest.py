"""Network namespaces made by the tests themselves, and a stand-in for Vigil's southbound API.

Namespaces and links are named ``vgtest-...`` and removed after each test
(deleting a namespace deletes the links in it). Tests that need them skip
when not run as root. Traffic goes only to 127.0.0.1 or to 198.18.0.0/15
addresses inside the namespaces the test made.
"""

import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from agent.nets import EventSink, ip
from vigil.wiring import BackgroundServer

_names = itertools.count(1)


@pytest.fixture
def netns() -> Iterator[Callable[[], str]]:
    """``netns()`` makes a new network namespace (loopback up) and returns its name."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it creates network namespaces and veth pairs (CI runs as root)")
    _sweep_stale()
    made: list[str] = []

    def make() -> str:
        name = f"vgtest-{os.getpid()}-{next(_names)}"
        ip("netns", "add", name)
        made.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def _sweep_stale() -> None:
    """Remove namespaces an earlier test run left behind (it crashed): ``vgtest-<pid>-<n>`` of a dead pid."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "vgtest" and parts[1].isdigit() and not _alive(int(parts[1])):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A running process named ``vgtest-service.py`` (a Python script): its name and the process."""
    script = tmp_path / "vgtest-service.py"
    script.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)])
    yield script.name, proc
    proc.kill()
    proc.wait()


@pytest.fixture
async def sink() -> AsyncIterator[tuple[EventSink, str]]:
    receiver = EventSink()
    async with BackgroundServer(receiver.app) as server:
        yield receiver, server.url
