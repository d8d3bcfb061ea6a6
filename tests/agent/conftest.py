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
